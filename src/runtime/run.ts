import { EventEmitter } from 'node:events'
import { createActor, fromPromise, type Actor, type SnapshotFrom } from 'xstate'
import { TERMINAL_STATES, taskMachine, type ExecuteInput, type TaskContext, type TaskState } from '../actors/task-machine.ts'
import type { ResolvedConfig } from './config.ts'
import type { Dispatchable, Dispatcher } from './dispatcher.ts'
import { TroupeError, type SerializedError } from './errors.ts'
import { reportListenerError, type RunEvents } from './events.ts'
import type { CompiledPlan, CompiledTask, Strategy } from './plan.ts'
import type { AttemptListener, WorkerPool } from './pool.ts'
import type { WorkerTask } from './protocol.ts'
import { speedupFigures, type RunResult, type RunStatus, type TaskResult } from './result.ts'
import { DagScheduler, type Transition } from './scheduler.ts'

/** A gate a ready task must pass to start (claims, named limits). Shared across runs. */
export interface Gate {
  /** Takes what `task` needs and returns true, or returns false and takes nothing. */
  tryAcquire(runId: string, task: CompiledTask): boolean
  /** Gives back what {@link tryAcquire} took, however the task ended. */
  release(runId: string, task: CompiledTask): void
}

/** Hooks for the journal: what a run reports as it goes, and what it can reuse. */
export interface RunRecorder {
  /** Tasks completed by an earlier run with this id, by index. */
  readonly reused: ReadonlyMap<number, { readonly output: unknown; readonly attempts: number }>
  taskEnded(task: CompiledTask, result: TaskResult): void
  runEnded(result: RunResult): Promise<void> | void
}

/** The clock a run uses; injected for deterministic tests. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface RunInit {
  readonly id: string
  readonly plan: CompiledPlan
  readonly strategy: Strategy
  readonly maxParallel: number
  readonly config: ResolvedConfig
  readonly pool: WorkerPool
  readonly dispatcher: Dispatcher
  readonly gates: readonly Gate[]
  readonly clock: Clock
  readonly retryDelay: (attempt: number) => number
  readonly recorder: RunRecorder | undefined
  readonly signal: AbortSignal | undefined
  /** Receives every event of the run (the runtime re-emits them). */
  readonly forward: <K extends keyof RunEvents>(name: K, ...args: RunEvents[K]) => void
}

type TaskActor = Actor<typeof taskMachine>
type TaskSnapshot = SnapshotFrom<typeof taskMachine>

/** One attempt's hold on a slot: freed when the actor left RUNNING and the worker settled. */
interface Slot {
  left: boolean
  settled: boolean
}

interface Change {
  readonly task: number
  readonly from: TaskState
  readonly to: TaskState
}

type RunStatusInternal = 'running' | 'cancelling' | 'ended'

/**
 * A run of a plan on a runtime. Each task is an XState actor; the {@link DagScheduler}
 * decides which ready task goes next; attempts run on the runtime's shared worker pool.
 * Task state changes reach the scheduler through an inbox drained outside the actors'
 * own call stacks, never re-entrantly.
 */
export class Run extends EventEmitter<RunEvents> implements Dispatchable {
  readonly id: string
  /** Resolves with the RunResult once every task has ended. Never rejects. */
  readonly result: Promise<RunResult>

  readonly #init: RunInit
  readonly #plan: CompiledPlan
  readonly #scheduler: DagScheduler
  readonly #machine
  readonly #actors: (TaskActor | undefined)[]
  readonly #final: (TaskSnapshot | undefined)[]
  readonly #states: TaskState[]
  readonly #slots: (Slot | undefined)[]
  readonly #retryTimers = new Map<number, unknown>()
  readonly #inbox: Change[] = []
  #draining = false
  #drainScheduled = false
  #status: RunStatusInternal = 'running'
  #cancelError: SerializedError | undefined
  #maxParallel: number
  #inFlight = 0
  #startedAt = 0
  #resolve!: (result: RunResult) => void

  constructor(init: RunInit) {
    super()
    this.id = init.id
    this.#init = init
    this.#plan = init.plan
    this.#maxParallel = init.strategy === 'sequential' ? 1 : init.maxParallel
    this.#scheduler = new DagScheduler(init.plan, init.strategy)
    const n = init.plan.tasks.length
    this.#actors = new Array(n)
    this.#final = new Array(n)
    this.#states = new Array<TaskState>(n).fill('PENDING')
    this.#slots = new Array(n)
    this.result = new Promise((resolve) => (this.#resolve = resolve))
    this.#machine = taskMachine.provide({
      actors: { execute: fromPromise<unknown, ExecuteInput>(({ input, signal }) => this.#execute(input, signal)) },
    })
  }

  /** Tasks run at once at most, in this run. */
  get maxParallel(): number {
    return this.#maxParallel
  }

  /** Changes how many tasks of this run may run at once; takes effect at the next start. */
  setMaxParallel(value: number): void {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`maxParallel\` to be an integer >= 1, got \`${String(value)}\` (${typeof value})`)
    }
    if (this.#init.strategy === 'sequential') return
    this.#maxParallel = value
    this.#init.dispatcher.request()
  }

  get strategy(): Strategy {
    return this.#init.strategy
  }

  get plan(): CompiledPlan {
    return this.#plan
  }

  /** The current state of a task. */
  stateOf(taskId: string): TaskState | undefined {
    const index = this.#plan.byId.get(taskId)
    return index === undefined ? undefined : this.#states[index]
  }

  /**
   * Cancels the run: tasks not yet ended become CANCELLED; running attempts are aborted
   * (agents watching `ctx.signal` get `config.cancelGraceMs` to stop, then their thread is
   * terminated). Resolves with the result.
   */
  cancel(reason = 'Run cancelled'): Promise<RunResult> {
    this.#cancel({ code: 'ERR_CANCELLED', message: reason })
    return this.result
  }

  /** Starts the run. Called once by the runtime. */
  start(): void {
    this.#startedAt = this.#init.clock.now()
    const signal = this.#init.signal
    if (signal) {
      if (signal.aborted) {
        queueMicrotask(() => this.#cancel({ code: 'ERR_CANCELLED', message: `Run cancelled: ${String(signal.reason ?? 'aborted')}` }))
      } else {
        signal.addEventListener('abort', () => this.#cancel({ code: 'ERR_CANCELLED', message: `Run cancelled: ${String(signal.reason ?? 'aborted')}` }), { once: true })
      }
    }
    const reused = this.#init.recorder?.reused ?? new Map()
    this.#emit('run:start', {
      runId: this.id,
      name: this.#plan.name,
      strategy: this.#init.strategy,
      maxParallel: this.#maxParallel,
      tasks: this.#plan.tasks.length,
      reused: reused.size,
      at: this.#startedAt,
    })
    for (const [index, record] of reused) this.#actor(index).send({ type: 'RESTORE', output: record.output, attempts: record.attempts })
    this.#apply(this.#scheduler.start(reused.keys()))
    this.#init.dispatcher.add(this)
    this.#scheduleDrain()
  }

  // ---- Dispatchable ----

  tryStartOne(): boolean {
    if (this.#status !== 'running' || this.#inFlight >= this.#maxParallel) return false
    const gates = this.#init.gates
    const task =
      gates.length === 0 ? this.#scheduler.next() : this.#scheduler.next((i) => this.#acquireGates(this.#plan.tasks[i]!))
    if (task === undefined) return false
    this.#inFlight++
    this.#slots[task] = { left: false, settled: false }
    this.#actor(task).send({ type: 'START' })
    return true
  }

  // ---- internals ----

  #acquireGates(task: CompiledTask): boolean {
    const gates = this.#init.gates
    for (let g = 0; g < gates.length; g++) {
      if (!gates[g]!.tryAcquire(this.id, task)) {
        for (let back = 0; back < g; back++) gates[back]!.release(this.id, task)
        return false
      }
    }
    return true
  }

  #actor(index: number): TaskActor {
    let actor = this.#actors[index]
    if (actor === undefined) {
      const task = this.#plan.tasks[index]!
      actor = createActor(this.#machine, {
        input: {
          taskIndex: index,
          maxAttempts: 1 + (task.retries ?? this.#init.config.retry.maxRetries),
          timeoutMs: task.timeoutMs ?? this.#init.config.timeoutMs,
          env: { now: this.#init.clock.now, retryDelay: this.#init.retryDelay },
        },
        clock: this.#init.clock,
      })
      actor.subscribe({
        next: (snapshot) => {
          const to = snapshot.value as TaskState
          const from = this.#states[index]!
          if (to === from) return
          this.#states[index] = to
          if (TERMINAL_STATES.has(to)) {
            this.#final[index] = snapshot
            this.#actors[index] = undefined
          }
          this.#inbox.push({ task: index, from, to })
          this.#scheduleDrain()
        },
        error: (error) => reportListenerError(error),
      })
      this.#actors[index] = actor
      actor.start()
    }
    return actor
  }

  async #execute(input: ExecuteInput, signal: AbortSignal): Promise<unknown> {
    const index = input.taskIndex
    const task = this.#plan.tasks[index]!
    const slot = this.#slots[index]!
    const dependencies: Record<string, unknown> = {}
    for (const dep of task.deps) dependencies[this.#plan.tasks[dep]!.id] = this.#final[dep]?.context.output
    const workerTask: WorkerTask = {
      moduleUrl: task.moduleUrl,
      input: task.input,
      runId: this.id,
      taskId: task.id,
      attempt: input.attempt,
      dependencies,
      model: this.#init.config.models[task.agent],
    }
    try {
      const result = await this.#init.pool.run(workerTask, this.#listener(task, input.attempt), signal, this.#init.config.cancelGraceMs)
      if (result.ok) return result.output
      throw result.error
    } finally {
      slot.settled = true
      this.#freeSlot(index, slot)
    }
  }

  #listener(task: CompiledTask, attempt: number): AttemptListener {
    return {
      onProgress: (fraction, message) =>
        this.#emit('task:progress', {
          runId: this.id,
          taskId: task.id,
          attempt,
          fraction: Math.min(1, Math.max(0, Number(fraction) || 0)),
          message,
          at: this.#init.clock.now(),
        }),
      onLog: (message) => this.#emit('task:log', { runId: this.id, taskId: task.id, attempt, message, at: this.#init.clock.now() }),
    }
  }

  /** Frees an attempt's slot once its actor left RUNNING and its worker settled, both. */
  #freeSlot(index: number, slot: Slot): void {
    if (!slot.left || !slot.settled) return
    if (this.#slots[index] === slot) this.#slots[index] = undefined
    this.#inFlight--
    for (const gate of this.#init.gates) gate.release(this.id, this.#plan.tasks[index]!)
    this.#init.dispatcher.release()
    this.#scheduleDrain()
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#draining) return
    this.#drainScheduled = true
    queueMicrotask(() => {
      this.#drainScheduled = false
      this.#drain()
    })
  }

  #drain(): void {
    this.#draining = true
    try {
      for (let change = this.#inbox.shift(); change !== undefined; change = this.#inbox.shift()) this.#onChange(change)
    } finally {
      this.#draining = false
    }
    if (this.#status !== 'ended' && this.#scheduler.done && this.#inFlight === 0 && this.#retryTimers.size === 0) {
      void this.#finish()
    }
  }

  #onChange({ task, from, to }: Change): void {
    const snapshot = this.#final[task] ?? this.#actors[task]?.getSnapshot()
    const context = snapshot?.context
    this.#emit('task:state', {
      runId: this.id,
      taskId: this.#plan.tasks[task]!.id,
      agent: this.#plan.tasks[task]!.agent,
      state: to,
      previous: from,
      attempt: context?.attempt ?? 0,
      at: this.#init.clock.now(),
      ...(context?.error && to !== 'RUNNING' ? { error: context.error } : {}),
    })
    if (from === 'RUNNING') {
      const slot = this.#slots[task]
      if (slot) {
        slot.left = true
        this.#freeSlot(task, slot)
      }
    }
    if (TERMINAL_STATES.has(to)) {
      const result = this.#taskResult(task)
      this.#init.recorder?.taskEnded(this.#plan.tasks[task]!, result)
      if (to === 'COMPLETED' && context?.reused) return
      if (to === 'COMPLETED') this.#apply(this.#scheduler.end(task, 'completed'))
      else if (to === 'FAILED') this.#apply(this.#scheduler.end(task, 'failed'))
    } else if (to === 'QUEUED' && from === 'RUNNING') {
      this.#scheduleRetry(task, context!.notBefore)
    }
  }

  #scheduleRetry(task: number, notBefore: number): void {
    const clock = this.#init.clock
    const handle = clock.setTimeout(() => {
      this.#retryTimers.delete(task)
      if (this.#status !== 'running') return this.#scheduleDrain()
      this.#scheduler.requeue(task)
      this.#init.dispatcher.request()
    }, Math.max(0, notBefore - clock.now()))
    this.#retryTimers.set(task, handle)
  }

  #apply(transition: Transition): void {
    for (const task of transition.ready) this.#actor(task).send({ type: 'DEPS_DONE' })
    if (transition.skipped.length > 0) {
      for (const task of transition.skipped) {
        const failedDeps = this.#plan.tasks[task]!.deps.filter((d) => this.#scheduler.isEnded(d) && this.#states[d] !== 'COMPLETED')
        const names = failedDeps.map((d) => `"${this.#plan.tasks[d]!.id}" (${this.#states[d]})`)
        this.#actor(task).send({
          type: 'SKIP',
          error: {
            code: 'ERR_DEPENDENCY_FAILED',
            message:
              names.length > 0
                ? `Skipped: dependency ${names.join(', ')} did not complete`
                : 'Skipped: an earlier stage failed (pipeline fail-fast)',
          },
        })
      }
    }
    if (transition.ready.length > 0) this.#init.dispatcher.request()
  }

  #cancel(error: SerializedError): void {
    if (this.#status !== 'running') return
    this.#status = 'cancelling'
    this.#cancelError = error
    for (const handle of this.#retryTimers.values()) this.#init.clock.clearTimeout(handle)
    this.#retryTimers.clear()
    for (const task of this.#scheduler.endAll()) this.#actor(task).send({ type: 'CANCEL', error })
    // Retrying tasks sit in QUEUED without being in the scheduler's ready set.
    for (let i = 0; i < this.#states.length; i++) {
      if (!TERMINAL_STATES.has(this.#states[i]!)) this.#actor(i).send({ type: 'CANCEL', error })
    }
    this.#scheduleDrain()
  }

  #taskResult(index: number): TaskResult {
    const context: TaskContext | undefined = (this.#final[index] ?? this.#actors[index]?.getSnapshot())?.context
    const state = this.#states[index]!
    if (context === undefined) return { state, attempts: 0 }
    const ran = context.startedAt !== undefined
    return {
      state,
      attempts: context.attempt,
      ...(ran ? { startedAt: context.startedAt, finishedAt: context.finishedAt, durationMs: context.busyMs } : {}),
      ...(state === 'COMPLETED' ? { output: context.output } : {}),
      ...(context.error ? { error: context.error } : {}),
      ...(context.reused ? { reused: true } : {}),
    }
  }

  async #finish(): Promise<void> {
    this.#status = 'ended'
    this.#init.dispatcher.remove(this)
    const results = this.#plan.tasks.map((_, i) => this.#taskResult(i))
    const totals = { tasks: results.length, completed: 0, failed: 0, skipped: 0, cancelled: 0, reused: 0 }
    const tasks: Record<string, TaskResult> = {}
    results.forEach((r, i) => {
      tasks[this.#plan.tasks[i]!.id] = r
      if (r.state === 'COMPLETED') totals.completed++
      else if (r.state === 'FAILED') totals.failed++
      else if (r.state === 'SKIPPED') totals.skipped++
      else if (r.state === 'CANCELLED') totals.cancelled++
      if (r.reused) totals.reused++
    })
    const status: RunStatus = this.#cancelError ? 'cancelled' : totals.completed === totals.tasks ? 'completed' : 'failed'
    const figures = speedupFigures(this.#plan, this.#plan.order, results, this.#maxParallel)
    const result: RunResult = {
      runId: this.id,
      name: this.#plan.name,
      status,
      strategy: this.#init.strategy,
      maxParallel: this.#maxParallel,
      startedAt: this.#startedAt,
      finishedAt: this.#init.clock.now(),
      ...figures,
      totals,
      tasks,
      ...(this.#cancelError ? { error: this.#cancelError } : {}),
    }
    try {
      await this.#init.recorder?.runEnded(result)
    } catch (error) {
      reportListenerError(error)
    }
    this.#emit('run:end', { runId: this.id, result })
    this.#resolve(result)
  }

  #emit<K extends keyof RunEvents>(name: K, ...args: RunEvents[K]): void {
    this.#init.forward(name, ...args)
    if (this.listenerCount(name as string) === 0) return
    try {
      ;(this.emit as (name: K, ...args: RunEvents[K]) => boolean)(name, ...args)
    } catch (error) {
      reportListenerError(error)
    }
  }
}
