import { createActor, setup } from 'xstate'
import { budgetAdmits, budgetLevel } from '../runtime/admission/budget.ts'
import { paysPerCall, SpendReservations } from '../runtime/admission/reservation.ts'
import type { Dispatchable } from '../runtime/admission/dispatcher.ts'
import { GateLedger } from '../runtime/admission/gate-ledger.ts'
import { UsageLedger, type UsageReport } from '../runtime/admission/usage.ts'
import type { SerializedError } from '../runtime/core/errors.ts'
import { reportListenerError, type ApprovalSource } from '../runtime/report/events.ts'
import type { RepairRecord, RunResult, TaskResult } from '../runtime/report/result.ts'
import type { AttemptResult } from '../runtime/execution/executor.ts'
import type { CompiledTask } from '../runtime/plan/plan.ts'
import { isStaged } from '../runtime/plan/strategies.ts'
import type { Addition, RunPlan } from '../runtime/plan/run-plan.ts'
import { DagScheduler, REFUSE_AGENT, type Transition } from '../runtime/schedule/scheduler.ts'
import { Approvals, type AwaitingApproval } from './approvals.ts'
import { Attempts } from './attempts.ts'
import { conditionSkipError, Conditions } from './conditions.ts'
import { effectiveMaxParallel, type RunInit, type RunOutlet } from './run-init.ts'
import type { LifecycleState, StopReason } from './run-lifecycle.ts'
import {
  initialRunState,
  isLive,
  phaseOf,
  reduceRun,
  repairRefusal,
  stopReasonOf,
  type RunEffect,
  type RunEvent,
  type RunState,
} from './run-reducer.ts'
import { assembleResult, skipError } from './run-result.ts'
import { RunGrowth } from './run-growth.ts'
import { TaskActors, type TaskChange } from './task-actors.ts'
import type { TaskState } from './task-machine.ts'

/**
 * The parent of a run's task actors: they share its actor system (an actor of its own system
 * would cost twice the memory). The run's lifecycle is the reducer's (see run-reducer.ts).
 */
const runRoot = setup({}).createMachine({ id: 'run' })

/**
 * The engine of one run, as the interpreter of its reducer ({@link reduceRun}): the run's
 * decisions (lifecycle, stop, pause, retries, supervision, budget, settling) are the
 * reducer's; this class turns events into reducer events and performs the effects it
 * returns. It owns the task actors (one per task while the task lives; a task that ended
 * keeps only its result record), the inbox that feeds task state changes to the scheduler
 * outside the actors' call stacks, and the timers (on the injected clock).
 */
export class RunMachine implements Dispatchable {
  readonly result: Promise<RunResult>
  readonly #init: RunInit
  /** The run's plan: it grows as tasks are added ({@link addTasks}). */
  readonly #plan: RunPlan
  readonly #out: RunOutlet
  readonly #root = createActor(runRoot)
  /** The reducer's state: only {@link #dispatch} replaces it. */
  #state: RunState
  readonly #scheduler: DagScheduler
  readonly #tasks: TaskActors
  readonly #attempts: Attempts
  readonly #retryTimers = new Map<number, unknown>()
  readonly #inbox: TaskChange[] = []
  readonly #conditions = new Conditions()
  /** Tasks added at run time, and parents waiting for those they spawned. */
  readonly #growth: RunGrowth
  /** Tasks held by their approve gate. */
  readonly #approvals: Approvals
  /** Why a task's condition skipped or failed it, until the task is told. */
  readonly #conditionErrors = new Map<number, SerializedError>()
  /** From a drain's scheduling to its end: changes queued meanwhile join the same drain. */
  #drainScheduled = false
  readonly #usage = new UsageLedger()
  readonly #reservations = new SpendReservations()
  /** What each task holds of the runtime's gates, and why. */
  readonly #ledger: GateLedger
  /** waves and pipeline open groups of tasks at once: any completion can change the ready set. */
  readonly #barriers: boolean
  #maxParallel: number
  #startedAt = 0
  /** Where each task's final attempt ran, when its executor said (a remote worker's name). */
  #workers: Map<number, string> | undefined
  /** Repairs of each task's attempts (worktree tasks with `repair`), by index. */
  #repairs: Map<number, readonly RepairRecord[]> | undefined
  #resolve!: (result: RunResult) => void

  constructor(init: RunInit, out: RunOutlet) {
    this.#init = init
    this.#plan = init.plan
    this.#out = out
    this.#maxParallel = effectiveMaxParallel(init.strategy, init.maxParallel)
    this.#state = initialRunState(
      { plan: init.plan, supervision: init.config.supervision, rateLimitRetries: init.config.retry.rateLimitRetries },
      init.config.budget,
    )
    this.#ledger = new GateLedger(init.id, init.gates)
    this.#scheduler = new DagScheduler(
      init.plan,
      init.strategy,
      undefined,
      (task) => this.#decide(task),
      (task) => this.#approvals.admitsAtStart(task),
    )
    this.#barriers = init.strategy === 'waves' || isStaged(init.strategy)
    this.#tasks = new TaskActors(init.plan, init.config, { now: init.clock.now, retryDelay: init.retryDelay }, this.#root, (change) =>
      this.#changed(change),
    )
    this.#attempts = new Attempts({
      ...init,
      emit: out.emit,
      onUsage: (task, report) => this.#onUsage(task, report),
      outputOf: (task) => this.#tasks.resultOf(task)?.output,
      onTimeout: (task) => this.#tasks.send(task, { type: 'TIMEOUT' }),
      onAnswer: (task, result) => this.#answered(task, result),
      onFreed: (task, parked) => this.#freed(task, parked),
      onSpawn: (task, attempt, tasks, wait) => this.#growth.spawn(task, attempt, tasks, wait),
      onWaitTasks: (task, attempt, request) => this.#growth.waitTasks(task, attempt, request),
      onHeld: (task, review) => this.#approvals.heldAtMerge(task, review),
      mayRepair: (task) => this.#mayRepair(task),
    })
    this.#growth = new RunGrowth({
      init,
      plan: init.plan,
      out,
      scheduler: this.#scheduler,
      tasks: this.#tasks,
      attempts: this.#attempts,
      ledger: this.#ledger,
      barriers: this.#barriers,
      lifecycle: () => this.lifecycle,
      apply: (transition) => this.#apply(transition),
      scheduleDrain: () => this.#scheduleDrain(),
      stop: (reason) => this.stop(reason),
    })
    const parts = { scheduler: this.#scheduler, tasks: this.#tasks, attempts: this.#attempts, ledger: this.#ledger }
    this.#approvals = new Approvals({ init, plan: init.plan, out, ...parts })
    this.#root.start()
    this.result = new Promise((resolve) => (this.#resolve = resolve))
  }

  /** Tasks awaiting approval now. */
  awaitingApproval(): readonly AwaitingApproval[] {
    return this.#approvals.awaiting()
  }

  /** Approves a task awaiting approval (see Approvals). */
  approve(taskId: string, source: ApprovalSource, request?: string): void {
    this.#approvals.approve(taskId, source, request)
  }

  /** Rejects a task awaiting approval: it FAILS with ERR_APPROVAL_REJECTED. */
  reject(taskId: string, reason: string, source: ApprovalSource, request?: string): void {
    this.#approvals.reject(taskId, reason, source, request)
  }

  get lifecycle(): LifecycleState {
    return phaseOf(this.#state)
  }

  get maxParallel(): number {
    return this.#maxParallel
  }

  /**
   * `RunResult.tasks[id].worker`: `local`, or the remote worker the final attempt ran on; and
   * `waitedMs` for a task that waited for tasks it spawned.
   */
  #finalResults(results: TaskResult[]): TaskResult[] {
    const executor = this.#init.executor.name
    const local = executor === 'local' || executor === undefined
    return results.map((raw, i) => {
      const r = this.#withRepairs(i, raw)
      if (r.attempts === 0 || r.reused) return r
      const worker = this.#workers?.get(i) ?? (local ? 'local' : undefined)
      const waitedMs = this.#attempts.waitedMs(i)
      if (worker === undefined && waitedMs === undefined) return r
      // Completed in place: the record is the run's own, and a copy of each of a large run's
      // records at its end was a second set of them at the run's peak.
      const record = r as { -readonly [K in keyof TaskResult]: TaskResult[K] }
      if (worker !== undefined) record.worker = worker
      if (waitedMs !== undefined) record.waitedMs = waitedMs
      return record
    })
  }

  /** `RunResult.tasks[id].repairs` (and the journal's): the repairs of the task's attempts, or of the run that completed it. */
  #withRepairs(index: number, result: TaskResult): TaskResult {
    const repairs = this.#repairs?.get(index)
    return repairs === undefined ? result : { ...result, repairs }
  }

  /** Why a repair of `task`'s attempt may not start now (see {@link repairRefusal}). */
  #mayRepair(task: CompiledTask): string | undefined {
    return repairRefusal(this.#state, this.#usage.costUsd, task.priority)
  }

  set maxParallel(value: number) {
    this.#maxParallel = effectiveMaxParallel(this.#init.strategy, value)
    this.#init.dispatcher.request()
  }

  /**
   * Tasks started and not ended (running, waiting, or waiting to retry), with or without an
   * actor; a task only queued or ended counts none.
   */
  get liveActors(): number {
    return this.#tasks.live
  }

  stateOf(index: number): TaskState {
    return this.#tasks.stateOf(index)
  }

  /** The run's budget now (`budget.maxCostUsd`, `onExceeded`). */
  get budget(): RunInit['config']['budget'] {
    return this.#state.budget
  }

  /**
   * Changes the run's `budget.maxCostUsd`. A run paused by its budget (`onExceeded: "pause"`)
   * whose spend is now below the new budget starts tasks again.
   */
  setBudget(maxCostUsd: number | null): void {
    this.#dispatch({ type: 'set-budget', maxCostUsd, spentUsd: this.#usage.costUsd })
  }

  /** Stops the run early; the first reason wins. Budget `pause`: no task starts, running attempts finish. */
  stop(reason: StopReason): void {
    this.#dispatch({ type: 'stop', reason })
  }

  /** Steps the reducer, then performs its effects in order. */
  #dispatch(event: RunEvent): void {
    const [state, effects] = reduceRun(this.#state, event)
    this.#state = state
    for (const effect of effects) this.#perform(effect)
  }

  #perform(effect: RunEffect): void {
    switch (effect.type) {
      case 'send':
        return this.#tasks.send(effect.task, effect.event)
      case 'count-usage':
        return this.#onUsage(this.#plan.tasks[effect.task]!, effect.report)
      case 'pause-limits': {
        const task = this.#plan.tasks[effect.task]!
        return this.#init.limits?.pauseUntil(task.uses, effect.until, task.id, this.#init.id)
      }
      case 'abort-attempt':
        return this.#attempts.abort(effect.task)
      case 'approval-left':
        return this.#approvals.left(effect.task)
      case 'emit-state':
        return this.#emitState(effect.change)
      case 'emit-budget-exceeded': {
        const budget = this.#state.budget
        const { taskId, spentUsd } = effect
        const at = this.#init.clock.now()
        this.#out.emit('budget:exceeded', { runId: this.#init.id, spentUsd, maxCostUsd: budget.maxCostUsd!, onExceeded: budget.onExceeded, taskId, at })
        return
      }
      case 'task-ended': {
        this.#init.recorder?.taskEnded(this.#plan.tasks[effect.task]!, this.#withRepairs(effect.task, this.#tasks.resultOf(effect.task)!))
        // A parent whose last awaited task this was takes a slot again once this drain is over.
        return this.#growth.taskEnded(effect.task)
      }
      case 'schedule-end':
        return this.#apply(this.#scheduler.end(effect.task, effect.outcome))
      case 'arm-retry':
        return this.#armRetry(effect.task, effect.notBefore)
      case 'clear-retries':
        for (const handle of this.#retryTimers.values()) this.#init.clock.clearTimeout(handle)
        return this.#retryTimers.clear()
      case 'requeue':
        return this.#scheduler.requeue(effect.task)
      case 'end-scheduling':
        this.#scheduler.endAll()
        return
      case 'cancel-unended':
        return this.#cancelUnended(effect.error, effect.keepLive)
      case 'request-dispatch':
        return this.#init.dispatcher.request()
      case 'drain':
        return this.#scheduleDrain()
      case 'dispatch':
        return this.#dispatch(effect.event)
      case 'dispatch-later':
        return queueMicrotask(() => this.#dispatch(effect.event))
      case 'record':
        return void this.#record()
    }
  }

  /** Every task not ended gets CANCEL; with `keepLive`, a task whose attempt is under way finishes it first. */
  #cancelUnended(error: SerializedError, keepLive: boolean): void {
    for (let i = 0; i < this.#plan.tasks.length; i++) {
      // A task awaiting approval is cancelled whatever the stop: nobody would approve it any more.
      if (this.#tasks.resultOf(i) !== undefined || (keepLive && this.#attemptLive(i) && this.stateOf(i) !== 'AWAITING_APPROVAL')) continue
      this.#tasks.send(i, { type: 'CANCEL', error })
    }
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
    for (const [index, record] of reused) {
      this.#tasks.send(index, { type: 'RESTORE', output: record.output, attempts: record.attempts })
      if (record.repairs !== undefined) (this.#repairs ??= new Map()).set(index, record.repairs)
    }
    for (const index of this.#init.recorder?.approved ?? []) this.#approvals.preApprove(index)
    this.#apply(this.#scheduler.start(reused.keys()))
    this.#init.dispatcher.add(this)
    this.#scheduleDrain()
  }

  tryStartOne(): boolean {
    // A hybrid plan's open stage may allow fewer slots than the run.
    if (this.#attempts.inFlight >= Math.min(this.#maxParallel, this.#scheduler.slotLimit) || this.lifecycle !== 'running') return false
    // A parent whose spawned tasks have ended goes before any new start.
    if (this.#growth.resumable > 0) {
      // After the pending drain (which requests a pump), so that the ended tasks it holds
      // are counted out before the parent counts in again.
      if (this.#drainScheduled) return false
      const resumed = this.#growth.resumeParent()
      if (resumed !== 'discarded') return resumed === 'resumed'
    }
    const gates = this.#init.gates
    const budget = this.#state.budget
    const level = budgetLevel(this.#usage.costUsd, budget.maxCostUsd)
    const max = budget.maxCostUsd
    let affordable = false
    let reserved = false
    const index =
      gates.length === 0 && level === 'open' && max === null
        ? this.#scheduler.next()
        : this.#scheduler.next((i) => {
            const task = this.#plan.tasks[i]!
            if (!budgetAdmits(level, task.priority)) return false
            // Spend reserved for attempts in flight (paid agents only): see SpendReservations.
            if (max !== null && paysPerCall(task) && !this.#reservations.admits(task.agent, this.#usage.costUsd, max)) {
              reserved = true
              return REFUSE_AGENT
            }
            affordable = true
            if (this.#ledger.admit(task)) return true
            return this.#ledger.lastRefusalByAgent ? REFUSE_AGENT : false
          })
    if (index === undefined) {
      if (max !== null) {
        const ready = this.#scheduler.readyCount
        this.#dispatch({ type: 'none-started', ready, inFlight: this.#attempts.inFlight, affordable, reserved, spentUsd: this.#usage.costUsd })
      }
      return false
    }
    this.#tasks.send(index, { type: 'START' })
    const { attempt, timeoutMs } = this.#tasks.contextOf(index)
    const task = this.#plan.tasks[index]!
    if (max !== null && paysPerCall(task)) this.#reservations.started(index, task.agent)
    this.#attempts.start(task, attempt, timeoutMs)
    return true
  }

  /** The executor answered the task's current attempt. */
  #answered(task: CompiledTask, result: AttemptResult): void {
    const index = task.index
    // Where the final attempt ran: a remote worker's name (`local` unless the backend says otherwise).
    if (result.worker !== undefined) (this.#workers ??= new Map()).set(index, result.worker)
    if (result.repairs !== undefined) (this.#repairs ??= new Map()).set(index, [...(this.#repairs.get(index) ?? []), ...result.repairs])
    this.#dispatch({ type: 'answer', task: index, result, live: this.#attemptLive(index), now: this.#init.clock.now() })
  }

  /** An attempt's slot, and what its gates hold, are free again. `parked`: it had given its slot back while waiting. */
  #freed(task: CompiledTask, parked: boolean): void {
    this.#reservations.ended(task.index)
    if (parked) this.#growth.parkedAttemptEnded(task)
    this.#ledger.release(task, 'attempt ended')
    // The scheduler learns of the outcome in the next drain. A completion that cannot make
    // another task ready (no dependents, no barrier) must not delay the next start: start
    // it now, so the worker does not idle. Otherwise the drain goes first, and newly ready
    // tasks compete for the slot in priority order.
    if (parked) this.#init.dispatcher.request()
    else this.#init.dispatcher.release(this.#plan.dependents[task.index]!.length === 0 && !this.#barriers)
    this.#scheduleDrain()
  }

  /**
   * Adds tasks to the running DAG (`Run.addTasks`): see {@link RunGrowth.addTasks}. Throws a
   * TroupeError (the plan's codes), adding nothing, when they are invalid.
   */
  addTasks(raw: unknown, source: string): Addition {
    return this.#growth.addTasks(raw, { source })
  }

  #onUsage(task: CompiledTask, report: UsageReport): void {
    this.#usage.add(task.agent, report)
    this.#reservations.spent(task.index, report.costUsd ?? 0)
    this.#dispatch({ type: 'spent', taskId: task.id, spentUsd: this.#usage.costUsd })
  }

  /** Every task transition, from inside the actor's send: queued for the drain. */
  #changed(change: TaskChange): void {
    this.#dispatch({ type: 'transition', change })
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
      for (let at = 0; at < inbox.length; at++) {
        const change = inbox[at]!
        this.#dispatch({ type: 'changed', change, reused: this.#tasks.resultOf(change.task)?.reused === true })
      }
      inbox.length = 0
    } finally {
      this.#drainScheduled = false
    }
    this.#dispatch({ type: 'drained', inFlight: this.#attempts.inFlight, done: this.#scheduler.done, resumable: this.#growth.resumable > 0 })
  }

  /** A task's `task:state` event: three per task, built only for someone who listens. */
  #emitState({ task, from, to, attempt, error }: TaskChange): void {
    if (!this.#out.listening('task:state')) return
    const compiled = this.#plan.tasks[task]!
    this.#out.emit('task:state', {
      runId: this.#init.id,
      taskId: compiled.id,
      agent: compiled.agent,
      state: to,
      previous: from,
      attempt,
      at: this.#init.clock.now(),
      ...(error && to !== 'RUNNING' ? { error } : {}),
      ...(to === 'COMPLETED' && this.#tasks.resultOf(task)?.cached ? { cached: true as const } : {}),
      ...((to === 'COMPLETED' || to === 'FAILED') && this.#repairs?.has(task) ? { repairs: this.#repairs.get(task)! } : {}),
    })
  }

  /** The task has an attempt under way: RUNNING, or WAITING for tasks it spawned. */
  #attemptLive(index: number): boolean {
    return isLive(this.stateOf(index))
  }

  #armRetry(task: number, notBefore: number): void {
    const clock = this.#init.clock
    const handle = clock.setTimeout(() => {
      this.#retryTimers.delete(task)
      this.#dispatch({ type: 'retry-due', task })
    }, Math.max(0, notBefore - clock.now()))
    this.#retryTimers.set(task, handle)
  }

  /** A conditional task's dependencies are done: evaluate its `when`. */
  #decide(task: number): 'run' | 'skip' | 'fail' {
    const outcome = this.#conditions.decide(
      this.#plan.tasks[task]!,
      (dep) => this.#tasks.resultOf(dep)?.output,
      (dep) => this.#plan.tasks[dep]!.id,
    )
    if (outcome.verdict !== 'run') this.#conditionErrors.set(task, outcome.error)
    return outcome.verdict
  }

  #apply(transition: Transition): void {
    for (const task of transition.conditionFailed) {
      this.#tasks.send(task, { type: 'REJECT', error: this.#conditionErrors.get(task)! })
      this.#conditionErrors.delete(task)
    }
    for (const task of transition.conditionSkipped) {
      let error = this.#conditionErrors.get(task)
      if (error === undefined) {
        const skippedDeps = this.#plan.tasks[task]!.deps.filter((d) => this.#scheduler.isEnded(d) && this.stateOf(d) === 'SKIPPED')
        error = conditionSkipError(skippedDeps.map((d) => `"${this.#plan.tasks[d]!.id}"`))
      } else this.#conditionErrors.delete(task)
      this.#tasks.send(task, { type: 'SKIP', error })
    }
    // Held by their approve gate before start: out of the ready set until approved.
    for (const task of transition.held) this.#approvals.holdAtStart(task)
    const { ready } = transition
    for (const task of ready) this.#tasks.send(task, { type: 'DEPS_DONE' })
    for (const task of transition.skipped) {
      const failedDeps = this.#plan.tasks[task]!.deps.filter((d) => this.#scheduler.isEnded(d) && this.stateOf(d) !== 'COMPLETED')
      this.#tasks.send(task, { type: 'SKIP', error: skipError(failedDeps.map((d) => `"${this.#plan.tasks[d]!.id}" (${this.stateOf(d)})`)) })
    }
    if (ready.length > 0) this.#init.dispatcher.request()
  }

  /** Every task has ended: assemble the result, journal it, then end. */
  async #record(): Promise<void> {
    this.#init.dispatcher.remove(this)
    let result = assembleResult({
      runId: this.#init.id,
      plan: this.#plan,
      strategy: this.#init.strategy,
      maxParallel: this.#maxParallel,
      startedAt: this.#startedAt,
      finishedAt: this.#init.clock.now(),
      results: this.#finalResults(this.#tasks.results()),
      usage: this.#usage.summary(),
      governor: this.#init.governor?.end(),
      reason: stopReasonOf(this.#state),
      peakConcurrency: this.#state.peakRunning,
    })
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
    this.#dispatch({ type: 'recorded' })
    this.#out.emit('run:end', { runId: this.#init.id, result })
    this.#resolve(result)
  }
}
