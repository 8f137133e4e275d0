import { createActor } from 'xstate'
import { budgetAdmits, budgetLevel, budgetStop } from '../runtime/admission/budget.ts'
import type { Dispatchable } from '../runtime/admission/dispatcher.ts'
import { UsageLedger, type UsageReport } from '../runtime/admission/usage.ts'
import type { SerializedError } from '../runtime/core/errors.ts'
import { reportListenerError } from '../runtime/core/events.ts'
import type { RunResult } from '../runtime/core/result.ts'
import type { AttemptResult } from '../runtime/execution/executor.ts'
import type { CompiledPlan, CompiledTask } from '../runtime/plan/plan.ts'
import { DagScheduler, type Transition } from '../runtime/schedule/scheduler.ts'
import { startAttempt, type AttemptHost, type InFlight } from './attempts.ts'
import { effectiveMaxParallel, type RunInit, type RunOutlet } from './run-init.ts'
import { abortsRunning, runLifecycle, runStatus, type LifecycleState, type StopReason } from './run-lifecycle.ts'
import { assembleResult, countTotals } from './run-result.ts'
import { crashWindow } from './supervision.ts'
import { TaskActors, type TaskChange } from './task-actors.ts'
import { TERMINAL_STATES, type TaskEvent, type TaskState } from './task-machine.ts'

/**
 * The engine of one run: it owns the run's lifecycle actor, its task actors (one per task
 * while the task lives; a task that ended keeps only its result record), the inbox that
 * feeds task state changes to the scheduler outside the actors' call stacks, the retry and
 * timeout timers (on the injected clock), supervision, the budget and cancellation.
 */
export class RunMachine implements Dispatchable {
  readonly result: Promise<RunResult>
  readonly #init: RunInit
  readonly #plan: CompiledPlan
  readonly #out: RunOutlet
  readonly #host: AttemptHost
  readonly #lifecycle = createActor(runLifecycle)
  readonly #scheduler: DagScheduler
  readonly #tasks: TaskActors
  readonly #attempts: (InFlight | undefined)[]
  readonly #retryTimers = new Map<number, unknown>()
  readonly #inbox: TaskChange[] = []
  /** From a drain's scheduling to its end: changes queued meanwhile join the same drain. */
  #drainScheduled = false
  readonly #usage = new UsageLedger()
  /** Times of recent worker crashes, for {@link crashWindow}. */
  #crashes: readonly number[] = []
  /** waves and pipeline open groups of tasks at once: any completion can change the ready set. */
  readonly #barriers: boolean
  #maxParallel: number
  #inFlight = 0
  #startedAt = 0
  #resolve!: (result: RunResult) => void

  constructor(init: RunInit, out: RunOutlet) {
    this.#init = init
    this.#plan = init.plan
    this.#out = out
    this.#maxParallel = effectiveMaxParallel(init.strategy, init.maxParallel)
    this.#scheduler = new DagScheduler(init.plan, init.strategy)
    this.#barriers = init.strategy === 'waves' || init.strategy === 'pipeline'
    this.#tasks = new TaskActors(init.plan, init.config, { now: init.clock.now, retryDelay: init.retryDelay }, (change) => this.#changed(change))
    this.#attempts = new Array(init.plan.tasks.length)
    this.#host = {
      runId: init.id,
      plan: init.plan,
      config: init.config,
      executor: init.executor,
      runDir: init.runDir,
      clock: init.clock,
      dispatcher: init.dispatcher,
      claims: init.claims,
      limits: init.limits,
      emit: out.emit,
      onUsage: (task, report) => this.#onUsage(task, report),
    }
    this.#lifecycle.start()
    this.result = new Promise((resolve) => (this.#resolve = resolve))
  }

  get lifecycle(): LifecycleState {
    return this.#lifecycle.getSnapshot().value
  }

  get maxParallel(): number {
    return this.#maxParallel
  }

  set maxParallel(value: number) {
    this.#maxParallel = effectiveMaxParallel(this.#init.strategy, value)
    this.#init.dispatcher.request()
  }

  /** Tasks with a live actor (queued, running or waiting to retry); an ended task has none. */
  get liveActors(): number {
    return this.#tasks.live
  }

  stateOf(index: number): TaskState {
    return this.#tasks.stateOf(index)
  }

  /** Stops the run early; the first reason wins. */
  stop(reason: StopReason): void {
    if (this.lifecycle !== 'running') return
    this.#lifecycle.send({ type: 'STOP', reason })
    for (const handle of this.#retryTimers.values()) this.#init.clock.clearTimeout(handle)
    this.#retryTimers.clear()
    this.#scheduler.endAll()
    const abort = abortsRunning(reason)
    // Every task not ended, including retrying ones (QUEUED, but not in the ready set).
    for (let i = 0; i < this.#plan.tasks.length; i++) {
      if (this.#tasks.resultOf(i) === undefined && (abort || this.stateOf(i) !== 'RUNNING')) this.#send(i, { type: 'CANCEL', error: reason.error })
    }
    this.#scheduleDrain()
  }

  start(): void {
    this.#startedAt = this.#init.clock.now()
    const reused = this.#init.recorder?.reused ?? new Map()
    this.#out.emit('run:start', {
      runId: this.#init.id,
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

  tryStartOne(): boolean {
    if (this.#inFlight >= this.#maxParallel || this.lifecycle !== 'running') return false
    const gates = this.#init.gates
    const budget = this.#init.config.budget
    const level = budgetLevel(this.#usage.costUsd, budget.maxCostUsd)
    let affordable = false
    const index =
      gates.length === 0 && level === 'open'
        ? this.#scheduler.next()
        : this.#scheduler.next((i) => {
            if (!budgetAdmits(level, this.#plan.tasks[i]!.priority)) return false
            affordable = true
            return this.#acquireGates(this.#plan.tasks[i]!)
          })
    if (index === undefined) {
      // Ready tasks the budget keeps back, and nothing running or retrying that could make a
      // critical one ready: the run cannot go on.
      if (level !== 'open' && !affordable && this.#scheduler.readyCount > 0 && this.#inFlight === 0 && this.#retryTimers.size === 0) {
        const reason = budgetStop(level, this.#usage.costUsd, budget)
        queueMicrotask(() => this.stop(reason))
      }
      return false
    }
    this.#inFlight++
    this.#send(index, { type: 'START' })
    this.#startAttempt(index)
    return true
  }

  #startAttempt(index: number): void {
    const task = this.#plan.tasks[index]!
    const { attempt, timeoutMs } = this.#tasks.contextOf(index)
    const inFlight: InFlight = startAttempt(
      this.#host,
      task,
      attempt,
      timeoutMs,
      (dep) => this.#tasks.resultOf(dep)?.output,
      () => {
        if (this.#attempts[index] === inFlight && this.stateOf(index) === 'RUNNING') this.#send(index, { type: 'TIMEOUT' })
      },
      (settled, result) => this.#settled(task, settled, result),
    )
    this.#attempts[index] = inFlight
  }

  #settled(task: CompiledTask, inFlight: InFlight, result: AttemptResult): void {
    const index = task.index
    // A late answer from an attempt that already timed out or was cancelled (and may have
    // been followed by a newer attempt) is ignored.
    const current = this.#attempts[index] === inFlight
    if (current) this.#attempts[index] = undefined
    if (current && this.stateOf(index) === 'RUNNING') {
      if (result.ok) this.#send(index, { type: 'SUCCEED', output: result.output })
      else if (result.error.rateLimitedUntil !== undefined) this.#rateLimited(task, result.error, result.error.rateLimitedUntil)
      else {
        this.#send(index, { type: 'FAIL', error: result.error })
        const verdict = crashWindow(this.#crashes, result.error, this.#init.clock.now(), this.#init.config.supervision)
        this.#crashes = verdict.crashes
        if (verdict.stop) this.stop({ kind: 'crash-loop', error: verdict.stop })
      }
    }
    this.#inFlight--
    for (const gate of this.#init.gates) gate.release(this.#init.id, task)
    // The scheduler learns of the outcome in the next drain. A completion that cannot make
    // another task ready (no dependents, no barrier) must not delay the next start: start
    // it now, so the worker does not idle. Otherwise the drain goes first, and newly ready
    // tasks compete for the slot in priority order.
    this.#init.dispatcher.release(task.dependents.length === 0 && !this.#barriers)
    this.#scheduleDrain()
  }

  /**
   * The provider said "too many requests": every limit the task uses pauses until `until`
   * (so the whole team waits once, instead of each task retrying on its own), and the
   * attempt goes back to the queue without counting.
   */
  #rateLimited(task: CompiledTask, error: SerializedError, until: number): void {
    this.#init.limits?.pauseUntil(task.uses, until, task.id)
    this.#send(task.index, { type: 'RATE_LIMITED', error, until, maxRateLimits: this.#init.config.retry.rateLimitRetries })
  }

  #onUsage(task: CompiledTask, report: UsageReport): void {
    this.#usage.add(task.agent, report)
    const budget = this.#init.config.budget
    const spentUsd = this.#usage.costUsd
    if (this.lifecycle !== 'running' || budgetLevel(spentUsd, budget.maxCostUsd) !== 'exceeded') return
    this.#out.emit('budget:exceeded', {
      runId: this.#init.id,
      spentUsd,
      maxCostUsd: budget.maxCostUsd!,
      onExceeded: budget.onExceeded,
      taskId: task.id,
      at: this.#init.clock.now(),
    })
    this.stop(budgetStop('exceeded', spentUsd, budget, task.id))
  }

  #acquireGates(task: CompiledTask): boolean {
    const gates = this.#init.gates
    for (let g = 0; g < gates.length; g++) {
      if (!gates[g]!.tryAcquire(this.#init.id, task)) {
        for (let back = 0; back < g; back++) gates[back]!.release(this.#init.id, task)
        return false
      }
    }
    return true
  }

  #send(index: number, event: TaskEvent): void {
    this.#tasks.send(index, event)
  }

  /** Every task transition, from inside the actor's send: queued for the drain. */
  #changed(change: TaskChange): void {
    // Leaving RUNNING other than through the executor's answer (timeout, cancel): stop the work.
    if (change.from === 'RUNNING') this.#attempts[change.task]?.handle.abort()
    this.#inbox.push(change)
    this.#scheduleDrain()
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return
    this.#drainScheduled = true
    queueMicrotask(() => this.#drain())
  }

  /** Everything that arrived since the drain was scheduled, in one pass. */
  #drain(): void {
    try {
      // Index, not shift(): a run's first drain can hold one change per task (100,000+).
      const inbox = this.#inbox
      for (let at = 0; at < inbox.length; at++) this.#onChange(inbox[at]!)
      inbox.length = 0
    } finally {
      this.#drainScheduled = false
    }
    const phase = this.lifecycle
    if ((phase === 'running' || phase === 'stopping') && this.#scheduler.done && this.#inFlight === 0 && this.#retryTimers.size === 0) {
      this.#lifecycle.send({ type: 'SETTLED' })
      void this.#record()
    }
  }

  #onChange({ task, from, to, attempt, error, notBefore }: TaskChange): void {
    const compiled = this.#plan.tasks[task]!
    // Three events per task: build them only for someone who listens.
    if (this.#out.listening('task:state')) {
      this.#out.emit('task:state', {
        runId: this.#init.id,
        taskId: compiled.id,
        agent: compiled.agent,
        state: to,
        previous: from,
        attempt,
        at: this.#init.clock.now(),
        ...(error && to !== 'RUNNING' ? { error } : {}),
      })
    }
    if (TERMINAL_STATES.has(to)) {
      const result = this.#tasks.resultOf(task)!
      this.#init.recorder?.taskEnded(compiled, result)
      if (to === 'COMPLETED' && result.reused) return
      if (to === 'COMPLETED') this.#apply(this.#scheduler.end(task, 'completed'))
      else if (to === 'FAILED') this.#apply(this.#scheduler.end(task, 'failed'))
    } else if (to === 'QUEUED' && from === 'RUNNING') {
      // A run stopped with running tasks left to finish (budget "pause") starts no retry.
      const reason = this.#lifecycle.getSnapshot().context.reason
      if (reason !== undefined) this.#send(task, { type: 'CANCEL', error: reason.error })
      else this.#scheduleRetry(task, notBefore)
    }
  }

  #scheduleRetry(task: number, notBefore: number): void {
    const clock = this.#init.clock
    const handle = clock.setTimeout(() => {
      this.#retryTimers.delete(task)
      if (this.lifecycle !== 'running') return this.#scheduleDrain()
      this.#scheduler.requeue(task)
      this.#init.dispatcher.request()
    }, Math.max(0, notBefore - clock.now()))
    this.#retryTimers.set(task, handle)
  }

  #apply(transition: Transition): void {
    for (const task of transition.ready) this.#send(task, { type: 'DEPS_DONE' })
    for (const task of transition.skipped) {
      const failedDeps = this.#plan.tasks[task]!.deps.filter((d) => this.#scheduler.isEnded(d) && this.stateOf(d) !== 'COMPLETED')
      const names = failedDeps.map((d) => `"${this.#plan.tasks[d]!.id}" (${this.stateOf(d)})`)
      this.#send(task, {
        type: 'SKIP',
        error: {
          code: 'ERR_DEPENDENCY_FAILED',
          message: names.length > 0 ? `Skipped: dependency ${names.join(', ')} did not complete` : 'Skipped: an earlier stage failed (pipeline fail-fast)',
        },
      })
    }
    if (transition.ready.length > 0) this.#init.dispatcher.request()
  }

  /** Every task has ended: assemble the result, journal it, then end. */
  async #record(): Promise<void> {
    this.#init.dispatcher.remove(this)
    const results = this.#tasks.results()
    const totals = countTotals(results)
    const reason = this.#lifecycle.getSnapshot().context.reason
    const result = assembleResult(
      {
        runId: this.#init.id,
        plan: this.#plan,
        strategy: this.#init.strategy,
        maxParallel: this.#maxParallel,
        startedAt: this.#startedAt,
        finishedAt: this.#init.clock.now(),
        results,
        usage: this.#usage.summary(),
        governor: this.#init.governor?.end(),
        error: reason?.error,
      },
      runStatus(reason, totals.completed === totals.tasks),
      totals,
    )
    try {
      await this.#init.recorder?.runEnded(result)
    } catch (error) {
      reportListenerError(error)
    }
    this.#lifecycle.send({ type: 'RECORDED' })
    this.#out.emit('run:end', { runId: this.#init.id, result })
    this.#resolve(result)
  }
}
