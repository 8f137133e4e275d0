import { EventEmitter } from 'node:events'
import { createActor, type Actor } from 'xstate'
import { TERMINAL_STATES, taskMachine, type TaskContext, type TaskEvent, type TaskMachineInput, type TaskState } from '../actors/task-machine.ts'
import { budgetAdmits, budgetLevel, type BudgetLevel } from './admission/budget.ts'
import type { ClaimRegistry } from './admission/claims.ts'
import type { Gate } from './admission/gate.ts'
import type { Clock } from './core/clock.ts'
import type { RunRecorder } from './journal/recorder.ts'
import type { ResolvedConfig } from './core/config.ts'
import type { Dispatchable, Dispatcher } from './admission/dispatcher.ts'
import { TroupeError, type SerializedError } from './core/errors.ts'
import { reportListenerError, type RunEvents } from './core/events.ts'
import type { CompiledPlan, CompiledTask, Strategy } from './plan/plan.ts'
import type { AttemptError, AttemptHandle, AttemptListener, Executor } from './execution/executor.ts'
import { speedupFigures, type RunResult, type RunStatus, type TaskResult } from './core/result.ts'
import { DagScheduler, type Transition } from './schedule/scheduler.ts'
import type { GovernorReport } from './admission/governor.ts'
import type { Limits } from './admission/limits.ts'
import { UsageLedger, type UsageReport } from './admission/usage.ts'

export interface RunInit {
  readonly id: string
  readonly plan: CompiledPlan
  readonly strategy: Strategy
  readonly maxParallel: number
  readonly config: ResolvedConfig
  /** Runs the attempts (the local executor, or a remote backend). */
  readonly executor: Executor
  /** The run's directory for per-attempt logs; absent when the journal is off. */
  readonly runDir: string | undefined
  readonly dispatcher: Dispatcher
  readonly gates: readonly Gate[]
  /** Where `ctx.claim` / `ctx.release` go (also one of `gates`). */
  readonly claims?: ClaimRegistry
  /** Where `ctx.acquire` goes (also one of `gates`). */
  readonly limits?: Limits
  /** The governor's record of this run, for `RunResult.governor`; absent when the governor is off. */
  readonly governor?: { end(): GovernorReport }
  readonly clock: Clock
  readonly retryDelay: (attempt: number) => number
  readonly recorder: RunRecorder | undefined
  readonly signal: AbortSignal | undefined
  /** Receives every event of the run (the runtime re-emits them). */
  readonly forward: <K extends keyof RunEvents>(name: K, ...args: RunEvents[K]) => void
  /** Whether anyone outside the run listens to an event (the runtime's listeners). */
  readonly listening: (name: keyof RunEvents) => boolean
  /** Completes the result once every task has ended, before it is journaled and resolved (workspaces: cleanup, merge outcomes). */
  readonly finalize?: (result: RunResult) => Promise<RunResult>
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({})

type TaskActor = Actor<typeof taskMachine>

/** An attempt in flight: it holds a slot until its worker settles. */
interface InFlight {
  readonly attempt: number
  readonly handle: AttemptHandle
  readonly timer: unknown
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
  readonly #actors: (TaskActor | undefined)[]
  /** Context of each ended task: all a finished task needs, without its snapshot's machinery. */
  readonly #final: (TaskContext | undefined)[]
  readonly #states: TaskState[]
  readonly #inFlightAttempts: (InFlight | undefined)[]
  readonly #retryTimers = new Map<number, unknown>()
  readonly #inbox: Change[] = []
  readonly #usage = new UsageLedger()
  #draining = false
  #drainScheduled = false
  #status: RunStatusInternal = 'running'
  /** waves and pipeline open groups of tasks at once: any completion can change the ready set. */
  readonly #barriers: boolean
  #cancelError: SerializedError | undefined
  /** Ended by {@link fail}: the run's status is `failed`, not `cancelled`. */
  #failedFast = false
  /** The clock and retry policy every task actor of this run shares. */
  readonly #env: TaskMachineInput['env']
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
    this.#barriers = init.strategy === 'waves' || init.strategy === 'pipeline'
    this.#env = { now: init.clock.now, retryDelay: init.retryDelay }
    const n = init.plan.tasks.length
    this.#actors = new Array(n)
    this.#final = new Array(n)
    this.#states = new Array<TaskState>(n).fill('PENDING')
    this.#inFlightAttempts = new Array(n)
    this.result = new Promise((resolve) => (this.#resolve = resolve))
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

  /**
   * Stops the run because it cannot succeed (e.g. the supervisor saw a crash loop): like
   * {@link cancel}, but the run ends `failed`, with `error` as the run's and the cancelled
   * tasks' error. Resolves with the result.
   */
  fail(error: SerializedError): Promise<RunResult> {
    if (this.#status !== 'running') return this.result
    this.#failedFast = true
    this.#cancel(error)
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
    for (const [index, record] of reused) this.#send(index, { type: 'RESTORE', output: record.output, attempts: record.attempts })
    this.#apply(this.#scheduler.start(reused.keys()))
    this.#init.dispatcher.add(this)
    this.#scheduleDrain()
  }

  // ---- Dispatchable ----

  tryStartOne(): boolean {
    if (this.#status !== 'running' || this.#inFlight >= this.#maxParallel) return false
    const gates = this.#init.gates
    const level = budgetLevel(this.#usage.costUsd, this.#init.config.budget.maxCostUsd)
    let affordable = false
    const task =
      gates.length === 0 && level === 'open'
        ? this.#scheduler.next()
        : this.#scheduler.next((i) => {
            if (!budgetAdmits(level, this.#plan.tasks[i]!.priority)) return false
            affordable = true
            return this.#acquireGates(this.#plan.tasks[i]!)
          })
    if (task === undefined) {
      if (level !== 'open' && !affordable && this.#scheduler.readyCount > 0) this.#checkBudgetStall(level)
      return false
    }
    this.#inFlight++
    this.#send(task, { type: 'START' })
    this.#startAttempt(task)
    return true
  }

  // ---- internals ----

  /**
   * Near the budget only critical tasks start. Called when tasks are ready but none may start
   * for the budget: if none of this run's tasks is running or waiting to retry, nothing can
   * make a critical task ready, so the run ends as over budget.
   */
  #checkBudgetStall(level: BudgetLevel): void {
    if (this.#inFlight > 0 || this.#retryTimers.size > 0) return
    const max = this.#init.config.budget.maxCostUsd!
    const message =
      level === 'exceeded'
        ? `Budget exceeded: agents reported $${this.#usage.costUsd} of budget.maxCostUsd $${max}`
        : `Budget nearly exhausted: agents reported $${this.#usage.costUsd} of budget.maxCostUsd $${max}; above 90 % only critical tasks start, and none is ready`
    queueMicrotask(() => this.#cancel({ code: 'ERR_BUDGET_EXCEEDED', message }, false))
  }

  #onUsage(task: CompiledTask, report: UsageReport): void {
    this.#usage.add(task.agent, report)
    const budget = this.#init.config.budget
    if (this.#status !== 'running' || budgetLevel(this.#usage.costUsd, budget.maxCostUsd) !== 'exceeded') return
    const fail = budget.onExceeded === 'fail'
    const spentUsd = this.#usage.costUsd
    this.#emit('budget:exceeded', {
      runId: this.id,
      spentUsd,
      maxCostUsd: budget.maxCostUsd!,
      onExceeded: budget.onExceeded,
      taskId: task.id,
      at: this.#init.clock.now(),
    })
    const message = `Budget exceeded: agents reported $${spentUsd} of budget.maxCostUsd $${budget.maxCostUsd} (task "${task.id}" crossed it); ${fail ? 'running tasks were cancelled' : 'running tasks finished, no new task started'}`
    this.#cancel({ code: 'ERR_BUDGET_EXCEEDED', message }, fail)
  }

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
      actor = createActor(taskMachine, {
        input: {
          maxAttempts: 1 + (task.retries ?? this.#init.config.retry.maxRetries),
          timeoutMs: task.timeoutMs ?? this.#init.config.timeoutMs,
          env: this.#env,
        },
      })
      this.#actors[index] = actor
      actor.start()
    }
    return actor
  }

  /**
   * Sends an event to a task's actor. The run is the only sender, so it sees every
   * transition here and queues it for the drain; no subscription is needed.
   */
  #send(index: number, event: TaskEvent): void {
    const actor = this.#actor(index)
    actor.send(event)
    const snapshot = actor.getSnapshot()
    const to = snapshot.value as TaskState
    const from = this.#states[index]!
    if (to === from) return
    this.#states[index] = to
    if (TERMINAL_STATES.has(to)) {
      this.#final[index] = snapshot.context
      this.#actors[index] = undefined
    }
    // Leaving RUNNING other than through the worker's answer (timeout, cancel): stop the work.
    if (from === 'RUNNING') this.#inFlightAttempts[index]?.handle.abort()
    this.#inbox.push({ task: index, from, to })
    this.#scheduleDrain()
  }

  #startAttempt(index: number): void {
    const task = this.#plan.tasks[index]!
    const context = this.#actors[index]!.getSnapshot().context
    const attempt = context.attempt
    let dependencies: Record<string, unknown> = EMPTY
    if (task.deps.length > 0) {
      dependencies = {}
      for (const dep of task.deps) dependencies[this.#plan.tasks[dep]!.id] = this.#final[dep]?.output
    }
    const handle = this.#init.executor.start(
      {
        runId: this.id,
        taskId: task.id,
        attempt,
        agent: task.agentSpec,
        input: task.input,
        dependencies,
        model: this.#init.config.models[task.agent],
        timeoutMs: context.timeoutMs,
        graceMs: this.#init.config.cancelGraceMs,
        baseDir: this.#plan.baseDir,
        runDir: this.#init.runDir,
        workspace: undefined,
        port: undefined,
      },
      this.#listener(task, attempt),
    )
    const clock = this.#init.clock
    const timer = clock.setTimeout(() => {
      if (this.#inFlightAttempts[index]?.attempt === attempt && this.#states[index] === 'RUNNING') this.#send(index, { type: 'TIMEOUT' })
    }, context.timeoutMs)
    const inFlight: InFlight = { attempt, handle, timer }
    this.#inFlightAttempts[index] = inFlight
    void handle.result.then((result) => {
      clock.clearTimeout(timer)
      // A late answer from an attempt that already timed out or was cancelled (and may have
      // been followed by a newer attempt) is ignored.
      const current = this.#inFlightAttempts[index] === inFlight
      if (current) this.#inFlightAttempts[index] = undefined
      if (current && this.#states[index] === 'RUNNING') {
        if (result.ok) this.#send(index, { type: 'SUCCEED', output: result.output })
        else if (result.error.rateLimitedUntil !== undefined) this.#rateLimited(task, result.error, result.error.rateLimitedUntil)
        else this.#send(index, { type: 'FAIL', error: result.error })
      }
      // The scheduler learns of the outcome in the next drain. A completion that cannot make
      // another task ready (no dependents, no barrier) must not delay the next start: start
      // it now, so the worker does not idle. Otherwise the drain goes first, and newly ready
      // tasks compete for the slot in priority order.
      this.#freeSlot(task, task.dependents.length === 0 && !this.#barriers)
    })
  }

  /**
   * The provider said "too many requests": every limit the task uses pauses until `until`
   * (so the whole team waits once, instead of each task retrying on its own), and the
   * attempt goes back to the queue without counting.
   */
  #rateLimited(task: CompiledTask, error: AttemptError, until: number): void {
    this.#init.limits?.pauseUntil(task.uses, until, task.id, this.id)
    this.#send(task.index, { type: 'RATE_LIMITED', error, until, maxRateLimits: this.#init.config.retry.rateLimitRetries })
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
      onAcquire: (name, signal) =>
        this.#init.limits?.acquire(name, signal) ?? Promise.reject(new TroupeError('ERR_ARGUMENT_INVALID', `ctx.acquire(${JSON.stringify(name)}): no limits on this runtime`)),
      onUsage: (report) => this.#onUsage(task, report),
      onClaim: (path) => this.#init.claims?.claim(this.id, task.id, path) ?? { granted: true },
      onRelease: (path) => {
        // A task kept QUEUED by this claim may pass its gate now.
        if (this.#init.claims?.unclaim(this.id, task.id, path)) this.#init.dispatcher.request()
      },
    }
  }

  /** An attempt's worker settled: its slot, and what its gates hold, are free again. */
  #freeSlot(task: CompiledTask, pumpNow: boolean): void {
    this.#inFlight--
    for (const gate of this.#init.gates) gate.release(this.id, task)
    this.#init.dispatcher.release(pumpNow)
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
      // Index, not shift(): a run's first drain can hold one change per task (100,000+).
      const inbox = this.#inbox
      for (let at = 0; at < inbox.length; at++) this.#onChange(inbox[at]!)
      inbox.length = 0
    } finally {
      this.#draining = false
    }
    if (this.#status !== 'ended' && this.#scheduler.done && this.#inFlight === 0 && this.#retryTimers.size === 0) {
      void this.#finish()
    }
  }

  #onChange({ task, from, to }: Change): void {
    const context = this.#contextOf(task)
    // Three events per task: build them only for someone who listens.
    if (this.#listening('task:state')) {
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
    }
    if (TERMINAL_STATES.has(to)) {
      this.#init.recorder?.taskEnded(this.#plan.tasks[task]!, this.#taskResult(task))
      if (to === 'COMPLETED' && context?.reused) return
      if (to === 'COMPLETED') this.#apply(this.#scheduler.end(task, 'completed'))
      else if (to === 'FAILED') this.#apply(this.#scheduler.end(task, 'failed'))
    } else if (to === 'QUEUED' && from === 'RUNNING') {
      // A run stopped with running tasks left to finish (budget "pause") starts no retry.
      if (this.#status !== 'running') this.#send(task, { type: 'CANCEL', error: this.#cancelError! })
      else this.#scheduleRetry(task, context!.notBefore)
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
    for (const task of transition.ready) this.#send(task, { type: 'DEPS_DONE' })
    if (transition.skipped.length > 0) {
      for (const task of transition.skipped) {
        const failedDeps = this.#plan.tasks[task]!.deps.filter((d) => this.#scheduler.isEnded(d) && this.#states[d] !== 'COMPLETED')
        const names = failedDeps.map((d) => `"${this.#plan.tasks[d]!.id}" (${this.#states[d]})`)
        this.#send(task, {
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

  /** Ends the run early. `abortRunning: false` lets running attempts finish (budget "pause"). */
  #cancel(error: SerializedError, abortRunning = true): void {
    if (this.#status !== 'running') return
    this.#status = 'cancelling'
    this.#cancelError = error
    for (const handle of this.#retryTimers.values()) this.#init.clock.clearTimeout(handle)
    this.#retryTimers.clear()
    this.#scheduler.endAll()
    // Every task not ended, including retrying ones (QUEUED, but not in the ready set).
    for (let i = 0; i < this.#states.length; i++) {
      if (!TERMINAL_STATES.has(this.#states[i]!) && (abortRunning || this.#states[i] !== 'RUNNING')) this.#send(i, { type: 'CANCEL', error })
    }
    this.#scheduleDrain()
  }

  /** A task's context: its final one once ended, else its actor's (undefined before it has one). */
  #contextOf(index: number): TaskContext | undefined {
    return this.#final[index] ?? this.#actors[index]?.getSnapshot().context
  }

  #taskResult(index: number): TaskResult {
    const context = this.#contextOf(index)
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
    const budgetFailed = this.#cancelError?.code === 'ERR_BUDGET_EXCEEDED' && this.#init.config.budget.onExceeded === 'fail'
    const status: RunStatus = budgetFailed || this.#failedFast ? 'failed' : this.#cancelError ? 'cancelled' : totals.completed === totals.tasks ? 'completed' : 'failed'
    const figures = speedupFigures(this.#plan, this.#plan.order, results, this.#maxParallel)
    let result: RunResult = {
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
      usage: this.#usage.summary(),
      ...(this.#init.governor ? { governor: this.#init.governor.end() } : {}),
      ...(this.#cancelError ? { error: this.#cancelError } : {}),
    }
    try {
      if (this.#init.finalize) result = await this.#init.finalize(result)
    } catch (error) {
      reportListenerError(error)
    }
    try {
      await this.#init.recorder?.runEnded(result)
    } catch (error) {
      reportListenerError(error)
    }
    this.#emit('run:end', { runId: this.id, result })
    this.#resolve(result)
  }

  #listening(name: keyof RunEvents): boolean {
    return this.listenerCount(name) > 0 || this.#init.listening(name)
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
