import { createActor, type Actor, type AnyActorRef } from 'xstate'
import type { ResolvedConfig } from '../runtime/core/config.ts'
import type { SerializedError } from '../runtime/core/errors.ts'
import type { TaskResult } from '../runtime/report/result.ts'
import type { CompiledPlan } from '../runtime/plan/plan.ts'
import { taskResult } from './run-result.ts'
import {
  TERMINAL_STATES,
  initialContext,
  started,
  succeeded,
  taskMachine,
  type TaskContext,
  type TaskEnvironment,
  type TaskEvent,
  type TaskMachineInput,
  type TaskState,
} from './task-machine.ts'

/** A task's state change, as seen when it happened. */
export interface TaskChange {
  readonly task: number
  readonly from: TaskState
  readonly to: TaskState
  readonly attempt: number
  readonly error: SerializedError | undefined
  /** A retrying task is not started before this time. */
  readonly notBefore: number
}

type TaskActor = Actor<typeof taskMachine>

/**
 * The task actors of one run. A task gets its actor when it is first sent an event other
 * than DEPS_DONE, and gives it up when it ends: from then on its result record is all that
 * remains, so a finished task costs a record, not an actor. A task that is only ready
 * (PENDING → QUEUED by DEPS_DONE, before any attempt) is one bit: a wide plan queues most of
 * its tasks at once, and an actor each cost ~5 KB and the time to create it, for tasks that
 * start much later. A task that then starts (QUEUED → RUNNING on START) is still no actor
 * but its context, stepped by the machine's own updates ({@link started}, {@link succeeded}):
 * most tasks go straight to COMPLETED, and an actor created and stepped per task was a fifth
 * of the dispatch thread's time and most of its garbage. Any other event for such a task
 * first gives it its actor, restored RUNNING with that context, which then takes the event.
 * While the actor lives, its snapshot is the single source of truth for the task's state.
 */
export class TaskActors {
  readonly #plan: CompiledPlan
  readonly #config: ResolvedConfig
  readonly #env: TaskEnvironment
  readonly #onChange: (change: TaskChange) => void
  readonly #parent: AnyActorRef
  readonly #actors: (TaskActor | undefined)[]
  readonly #results: (TaskResult | undefined)[]
  /** 1: QUEUED by DEPS_DONE, with no actor yet. */
  #queued: Uint8Array
  /** The context of each task RUNNING its first attempt with no actor (see the class comment). */
  readonly #running = new Map<number, TaskContext>()
  #live = 0

  /**
   * `parent` is the run's actor: its task actors are its children in XState's sense, and
   * share its actor system (an actor of its own system would cost twice the memory).
   * `onChange` sees every transition, from inside `send`.
   */
  constructor(plan: CompiledPlan, config: ResolvedConfig, env: TaskEnvironment, parent: AnyActorRef, onChange: (change: TaskChange) => void) {
    this.#plan = plan
    this.#parent = parent
    this.#config = config
    this.#env = env
    this.#onChange = onChange
    this.#actors = new Array(plan.tasks.length)
    this.#results = new Array(plan.tasks.length)
    this.#queued = new Uint8Array(plan.tasks.length)
  }

  /** Tasks started and not ended: with an actor, or RUNNING their first attempt without one. */
  get live(): number {
    return this.#live
  }

  stateOf(index: number): TaskState {
    if (this.#queued[index] === 1) return 'QUEUED'
    if (this.#running.has(index)) return 'RUNNING'
    return this.#results[index]?.state ?? (this.#actors[index]?.getSnapshot().value as TaskState | undefined) ?? 'PENDING'
  }

  /** The record of an ended task. */
  resultOf(index: number): TaskResult | undefined {
    return this.#results[index]
  }

  /** The context of a task that has an actor. */
  contextOf(index: number): TaskContext {
    return this.#running.get(index) ?? this.#actors[index]!.getSnapshot().context
  }

  /** One record per task; a task that never had an actor is reported in its state with no attempts. */
  results(): TaskResult[] {
    return Array.from({ length: this.#plan.tasks.length }, (_, i) => this.#results[i] ?? { state: this.stateOf(i), attempts: 0 })
  }

  /** Sends an event to a task's actor, creating it on first use. An ended task ignores events. */
  send(index: number, event: TaskEvent): void {
    if (this.#results[index] !== undefined) return
    let actor = this.#actors[index]
    if (actor === undefined && event.type === 'DEPS_DONE' && !this.#running.has(index)) {
      if (this.#queued.length <= index) this.#grow()
      if (this.#queued[index] === 1) return
      // PENDING → QUEUED, as the machine would: no context changes, so no actor yet.
      this.#queued[index] = 1
      this.#onChange({ task: index, from: 'PENDING', to: 'QUEUED', attempt: 0, error: undefined, notBefore: 0 })
      return
    }
    if (actor === undefined) {
      const running = this.#running.get(index)
      if (running !== undefined) {
        // RUNNING takes neither DEPS_DONE nor START.
        if (event.type === 'DEPS_DONE' || event.type === 'START') return
        // The context is this class's own (made at START below): updated in place.
        if (event.type === 'SUCCEED') return this.#ended(index, 'RUNNING', 'COMPLETED', Object.assign(running, succeeded(running, event)))
        // Anything else (failure, timeout, wait, approval, cancel, …) is the machine's to decide.
        this.#running.delete(index)
        actor = this.#createActor(index, taskMachine.resolveState({ value: 'RUNNING', context: running }))
      } else if (this.#queued[index] === 1 && event.type === 'START') {
        // QUEUED → RUNNING, as the machine would, still without an actor.
        this.#queued[index] = 0
        const queued = initialContext(this.#input(index))
        const context = Object.assign(queued, started(queued))
        this.#running.set(index, context)
        this.#live++
        const { attempt, notBefore } = context
        this.#onChange({ task: index, from: 'QUEUED', to: 'RUNNING', attempt, error: undefined, notBefore })
        return
      } else {
        actor = this.#createActor(index, undefined)
        if (this.#queued[index] === 1) {
          // It was QUEUED without an actor: the actor catches up, unseen (the change was reported then).
          this.#queued[index] = 0
          actor.send({ type: 'DEPS_DONE' })
        }
      }
      this.#actors[index] = actor
    }
    const from = actor.getSnapshot().value as TaskState
    actor.send(event)
    const snapshot = actor.getSnapshot()
    const to = snapshot.value as TaskState
    if (to === from) return
    const context = snapshot.context
    if (TERMINAL_STATES.has(to)) return this.#ended(index, from, to, context)
    this.#onChange({ task: index, from, to, attempt: context.attempt, error: context.error, notBefore: context.notBefore })
  }

  /** A task reached a final state: its record is all that remains of it. */
  #ended(index: number, from: TaskState, to: TaskState, context: TaskContext): void {
    this.#results[index] = taskResult(to, context)
    this.#actors[index] = undefined
    this.#running.delete(index)
    this.#live--
    this.#onChange({ task: index, from, to, attempt: context.attempt, error: context.error, notBefore: context.notBefore })
  }

  #input(index: number): TaskMachineInput {
    const task = this.#plan.tasks[index]!
    const config = this.#config
    return { maxAttempts: 1 + (task.retries ?? config.retry.maxRetries), timeoutMs: task.timeoutMs ?? config.timeoutMs, env: this.#env }
  }

  /** A started actor for a task: new (PENDING), or restored from `snapshot`. Counted live. */
  #createActor(index: number, snapshot: ReturnType<typeof taskMachine.resolveState> | undefined): TaskActor {
    const actor = createActor(taskMachine, {
      // One id for every task actor: xstate names the event a child's final state sends its
      // parent after the child's id (`xstate.done.actor.<id>`), and memoises transition
      // candidates per event type on the parent's machine definition, shared by every run:
      // a per-task id added one key per task, never freed (regression: ~230 bytes per task).
      id: 'task',
      parent: this.#parent,
      input: this.#input(index),
      // Restored: the snapshot's context stands, the input is not used.
      ...(snapshot === undefined ? {} : { snapshot }),
    })
    actor.start()
    if (snapshot === undefined) this.#live++
    return actor
  }

  /** The plan grew (tasks added at run time). */
  #grow(): void {
    const queued = new Uint8Array(Math.max(this.#plan.tasks.length, this.#queued.length * 2))
    queued.set(this.#queued)
    this.#queued = queued
  }
}
