import { initialTransition, transition, type SnapshotFrom } from 'xstate'
import { budgetAdmits, budgetLevel, budgetStop } from '../runtime/admission/budget.ts'
import { reservationStop } from '../runtime/admission/reservation.ts'
import type { ResolvedConfig } from '../runtime/core/config.ts'
import type { SerializedError } from '../runtime/core/errors.ts'
import type { UsageReport } from '../runtime/admission/usage.ts'
import { usageReports, type AttemptResult } from '../runtime/execution/executor.ts'
import type { CompiledPlan, Priority } from '../runtime/plan/plan.ts'
import { abortsRunning, runLifecycle, type LifecycleEvent, type LifecycleState, type StopReason } from './run-lifecycle.ts'
import { crashWindow } from './supervision.ts'
import type { TaskChange } from './task-actors.ts'
import { TERMINAL_STATES, type TaskEvent, type TaskState } from './task-machine.ts'

/**
 * The run's decisions as a reducer: `reduceRun(state, event) → [state, effects]`. It reads
 * nothing but its arguments, calls nothing, keeps no timer and starts no work: what the run
 * must do is returned as {@link RunEffect}s, which one interpreter (the run machine)
 * performs in order. An effect that needs the state as it is when it is performed (a stop
 * after usage was counted, say) is an event the interpreter dispatches then.
 *
 * The task actors keep their tasks' states (XState, while each task lives); the scheduler,
 * the gates and the attempts stay where they are. The reducer owns the run's lifecycle (the
 * {@link runLifecycle} machine, stepped with XState's pure `transition`), its stop reason,
 * the retry timers it armed, its crash window, its budget and its concurrency figures — the
 * state every "is the run over, may it go on" decision reads.
 */
export interface RunState {
  /** What the reducer reads and never changes: the plan (it grows; tasks never change) and the policies. */
  readonly static: RunStatic
  readonly lifecycle: SnapshotFrom<typeof runLifecycle>
  readonly budget: ResolvedConfig['budget']
  /** Retry timers armed and not yet fired or cleared. */
  readonly retrying: number
  /** Times of recent worker crashes, for {@link crashWindow}. */
  readonly crashes: readonly number[]
  /** Tasks RUNNING now, and the most at once so far (RunResult.peakConcurrency). */
  readonly running: number
  readonly peakRunning: number
}

export interface RunStatic {
  readonly plan: CompiledPlan
  readonly supervision: ResolvedConfig['supervision']
  /** `retry.rateLimitRetries`: rate-limited attempts re-queued without counting, at most. */
  readonly rateLimitRetries: number
}

export type RunEvent =
  /** The executor answered the task's attempt; `live`: that attempt is still the task's current one. */
  | { readonly type: 'answer'; readonly task: number; readonly result: AttemptResult; readonly live: boolean; readonly now: number }
  /** A task actor changed state (inside its `send`): what must happen at once. */
  | { readonly type: 'transition'; readonly change: TaskChange }
  /** The same change, taken from the inbox in the next drain. `reused`: the task completed in an earlier run. */
  | { readonly type: 'changed'; readonly change: TaskChange; readonly reused: boolean }
  /** Spend was counted; `spentUsd` is the run's total now. */
  | { readonly type: 'spent'; readonly taskId: string; readonly spentUsd: number }
  | { readonly type: 'stop'; readonly reason: StopReason }
  /** `Run.setBudget`; `spentUsd` is the run's total now. */
  | { readonly type: 'set-budget'; readonly maxCostUsd: number | null; readonly spentUsd: number }
  /** A retry timer fired. */
  | { readonly type: 'retry-due'; readonly task: number }
  /**
   * A drain of the inbox ended. `inFlight`: attempts holding a slot; `done`: the scheduler has
   * nothing left; `resumable`: parents whose awaited tasks ended wait for a slot.
   */
  | { readonly type: 'drained'; readonly inFlight: number; readonly done: boolean; readonly resumable: boolean }
  /**
   * The dispatcher offered a slot and no ready task passed: `ready` tasks are ready, `inFlight`
   * attempts hold slots; `affordable`: one passed the budget (another gate held it);
   * `reserved`: one was held back only by the spend reserved for attempts in flight.
   */
  | {
      readonly type: 'none-started'
      readonly ready: number
      readonly inFlight: number
      readonly affordable: boolean
      readonly reserved: boolean
      readonly spentUsd: number
    }
  /** The result is journaled. */
  | { readonly type: 'recorded' }

export type RunEffect =
  | { readonly type: 'send'; readonly task: number; readonly event: TaskEvent }
  /** Spend that came with an answer: counted now, after the outcome (the interpreter then dispatches `spent`). */
  | { readonly type: 'count-usage'; readonly task: number; readonly report: UsageReport }
  /** Every limit the task uses pauses until `until` (a rate limit). */
  | { readonly type: 'pause-limits'; readonly task: number; readonly until: number }
  /** Stop the task's current attempt (its slot stays held until the executor answers). */
  | { readonly type: 'abort-attempt'; readonly task: number }
  /** The task left AWAITING_APPROVAL. */
  | { readonly type: 'approval-left'; readonly task: number }
  | { readonly type: 'emit-state'; readonly change: TaskChange }
  | { readonly type: 'emit-budget-exceeded'; readonly taskId: string; readonly spentUsd: number }
  /** The task ended: journal it, and tell whoever waits for it (parents that spawned it). */
  | { readonly type: 'task-ended'; readonly task: number }
  /** Tell the scheduler the task ended, and apply what that makes ready or skips. */
  | { readonly type: 'schedule-end'; readonly task: number; readonly outcome: 'completed' | 'failed' }
  | { readonly type: 'arm-retry'; readonly task: number; readonly notBefore: number }
  | { readonly type: 'clear-retries' }
  /** Back into the ready set (a retry whose time came). */
  | { readonly type: 'requeue'; readonly task: number }
  /** The scheduler makes nothing ready any more. */
  | { readonly type: 'end-scheduling' }
  /** Every task not ended gets CANCEL with `error`; with `keepLive`, tasks whose attempt is under way finish it first. */
  | { readonly type: 'cancel-unended'; readonly error: SerializedError; readonly keepLive: boolean }
  | { readonly type: 'request-dispatch' }
  | { readonly type: 'drain' }
  /** Re-dispatched as an event when performed: a decision on the state as it is then. */
  | { readonly type: 'dispatch'; readonly event: RunEvent }
  /** The same, in a microtask: from inside the dispatcher's pump, which must not re-enter. */
  | { readonly type: 'dispatch-later'; readonly event: RunEvent }
  /** Every task ended: assemble and journal the result (then `recorded`). */
  | { readonly type: 'record' }

export function initialRunState(initial: RunStatic, budget: ResolvedConfig['budget']): RunState {
  const [lifecycle] = initialTransition(runLifecycle)
  return { static: initial, lifecycle, budget, retrying: 0, crashes: [], running: 0, peakRunning: 0 }
}

export function phaseOf(state: RunState): LifecycleState {
  return state.lifecycle.value as LifecycleState
}

export function stopReasonOf(state: RunState): StopReason | undefined {
  return state.lifecycle.context.reason
}

const NONE: readonly RunEffect[] = Object.freeze([])

/**
 * Why a repair of a task of `priority` may not start now, or undefined when it may: a repair is
 * new work, so only while the run runs and its budget admits the task (as a new attempt).
 */
export function repairRefusal(state: RunState, spentUsd: number, priority: Priority): string | undefined {
  const phase = phaseOf(state)
  if (phase !== 'running') return `the run is ${phase}`
  const { maxCostUsd } = state.budget
  if (!budgetAdmits(budgetLevel(spentUsd, maxCostUsd), priority)) return `the budget (maxCostUsd ${maxCostUsd}) is spent`
  return undefined
}

/** The run's next state and what to do, for `event`. Pure. */
export function reduceRun(state: RunState, event: RunEvent): readonly [RunState, readonly RunEffect[]] {
  switch (event.type) {
    case 'answer':
      return answer(state, event)
    case 'transition': {
      const { change } = event
      // Most changes need nothing at once (this runs three times per task): no array for them.
      const abort = isLive(change.from) && !isLive(change.to)
      if (!abort && change.from !== 'AWAITING_APPROVAL') return [state, NONE]
      const effects: RunEffect[] = []
      // Leaving RUNNING or WAITING other than through the executor's answer (timeout, cancel): stop the work.
      if (abort) effects.push({ type: 'abort-attempt', task: change.task })
      if (change.from === 'AWAITING_APPROVAL') effects.push({ type: 'approval-left', task: change.task })
      return [state, effects]
    }
    case 'changed':
      return changed(state, event.change, event.reused)
    case 'spent': {
      const { budget } = state
      if (phaseOf(state) !== 'running' || budgetLevel(event.spentUsd, budget.maxCostUsd) !== 'exceeded') return [state, NONE]
      const reason = budgetStop('exceeded', event.spentUsd, budget, event.taskId)
      return [
        state,
        [
          { type: 'emit-budget-exceeded', taskId: event.taskId, spentUsd: event.spentUsd },
          { type: 'dispatch', event: { type: 'stop', reason } },
        ],
      ]
    }
    case 'stop':
      return stop(state, event.reason)
    case 'set-budget': {
      const next = { ...state, budget: { ...state.budget, maxCostUsd: event.maxCostUsd } }
      if (phaseOf(state) !== 'paused' || budgetLevel(event.spentUsd, event.maxCostUsd) === 'exceeded') return [next, NONE]
      return [step(next, { type: 'RESUME' }), [{ type: 'request-dispatch' }, { type: 'drain' }]]
    }
    case 'retry-due': {
      const next = { ...state, retrying: state.retrying - 1 }
      const phase = phaseOf(state)
      // Paused: ready again, to start when the run goes on (settling ends it otherwise).
      if (phase === 'paused') return [next, [{ type: 'requeue', task: event.task }]]
      if (phase !== 'running') return [next, [{ type: 'drain' }]]
      return [next, [{ type: 'requeue', task: event.task }, { type: 'request-dispatch' }]]
    }
    case 'drained':
      return drained(state, event)
    case 'none-started':
      return noneStarted(state, event)
    case 'recorded':
      return [step(state, { type: 'RECORDED' }), NONE]
  }
}

function step(state: RunState, event: LifecycleEvent): RunState {
  const [lifecycle] = transition(runLifecycle, state.lifecycle, event)
  return lifecycle === state.lifecycle ? state : { ...state, lifecycle }
}

function answer(state: RunState, event: Extract<RunEvent, { type: 'answer' }>): readonly [RunState, readonly RunEffect[]] {
  const { task, result } = event
  // Spend that came with the result counts after the outcome is recorded: a completed task
  // whose final spend crosses the budget keeps its output.
  const late: RunEffect[] = usageReports(result.usage).map((report) => ({ type: 'count-usage', task, report }))
  if (!event.live) return [state, late]
  if (result.ok) {
    const output = result.output
    return [state, [{ type: 'send', task, event: result.cached ? { type: 'SUCCEED', output, cached: true } : { type: 'SUCCEED', output } }, ...late]]
  }
  const error = result.error
  if (error.rateLimitedUntil !== undefined) {
    // The provider said "too many requests": every limit the task uses pauses (the whole team
    // waits once), and the attempt goes back to the queue without counting.
    const until = error.rateLimitedUntil
    const rateLimited: TaskEvent = { type: 'RATE_LIMITED', error, until, maxRateLimits: state.static.rateLimitRetries }
    return [state, [{ type: 'pause-limits', task, until }, { type: 'send', task, event: rateLimited }, ...late]]
  }
  const verdict = crashWindow(state.crashes, error, event.now, state.static.supervision)
  const effects: RunEffect[] = [{ type: 'send', task, event: { type: 'FAIL', error } }, ...late]
  if (verdict.stop) effects.push({ type: 'dispatch', event: { type: 'stop', reason: { kind: 'crash-loop', error: verdict.stop } } })
  return [verdict.crashes === state.crashes ? state : { ...state, crashes: verdict.crashes }, effects]
}

function changed(state: RunState, change: TaskChange, reused: boolean): readonly [RunState, readonly RunEffect[]] {
  const { task, from, to } = change
  let running = state.running
  if (to === 'RUNNING') running++
  if (from === 'RUNNING') running--
  const next = running === state.running ? state : { ...state, running, peakRunning: Math.max(state.peakRunning, running) }
  const effects: RunEffect[] = [{ type: 'emit-state', change }]
  if (TERMINAL_STATES.has(to)) {
    effects.push({ type: 'task-ended', task })
    // A task completed in an earlier run was never in the ready set.
    if (to === 'COMPLETED' && !reused) effects.push({ type: 'schedule-end', task, outcome: 'completed' })
    else if (to === 'FAILED') effects.push({ type: 'schedule-end', task, outcome: 'failed' })
  } else if (to === 'QUEUED' && from === 'AWAITING_APPROVAL' && state.static.plan.tasks[task]!.approval === 'start') {
    // Approved before start: back in the ready set (Approvals requeued it).
  } else if (to === 'QUEUED' && isLive(from)) {
    // A stopped run starts no retry; a paused one keeps it for when it goes on (or settles).
    const reason = stopReasonOf(state)
    if (reason !== undefined && phaseOf(state) !== 'paused') effects.push({ type: 'send', task, event: { type: 'CANCEL', error: reason.error } })
    else return [{ ...next, retrying: next.retrying + 1 }, [...effects, { type: 'arm-retry', task, notBefore: change.notBefore }]]
  }
  return [next, effects]
}

function stop(state: RunState, reason: StopReason): readonly [RunState, readonly RunEffect[]] {
  const phase = phaseOf(state)
  if (reason.kind === 'budget-pause') {
    // No task starts; running attempts finish (their retries wait). Once nothing runs the run
    // settles `paused` (see `drained`) unless the budget is raised first.
    if (phase !== 'running') return [state, NONE]
    return [step(state, { type: 'PAUSE', reason }), [{ type: 'drain' }]]
  }
  if (phase !== 'running' && phase !== 'paused') return [state, NONE]
  return [
    { ...step(state, { type: 'STOP', reason }), retrying: 0 },
    [
      { type: 'clear-retries' },
      { type: 'end-scheduling' },
      // Every task not ended, including retrying ones (QUEUED, but not in the ready set).
      { type: 'cancel-unended', error: reason.error, keepLive: !abortsRunning(reason) },
      { type: 'drain' },
    ],
  ]
}

function drained(state: RunState, event: Extract<RunEvent, { type: 'drained' }>): readonly [RunState, readonly RunEffect[]] {
  // Parents whose awaited tasks ended in this drain: their turn (see RunMachine.tryStartOne).
  const effects: RunEffect[] = event.resumable ? [{ type: 'request-dispatch' }] : []
  const phase = phaseOf(state)
  if (phase === 'paused' && event.inFlight === 0 && !event.done) {
    // The paused run has nothing running: the tasks never started end CANCELLED with the
    // pause's code, and the run settles in a later drain.
    const reason = stopReasonOf(state)!
    const message = `Not started: ${reason.error.message}; resume the run with a larger budget.maxCostUsd to run it`
    effects.push(
      { type: 'clear-retries' },
      { type: 'end-scheduling' },
      { type: 'cancel-unended', error: { code: reason.error.code, message }, keepLive: false },
    )
    return [{ ...state, retrying: 0 }, effects]
  }
  const settling = phase === 'running' || phase === 'stopping' || phase === 'paused'
  if (settling && event.done && event.inFlight === 0 && state.retrying === 0) {
    effects.push({ type: 'record' })
    return [step(state, { type: 'SETTLED' }), effects]
  }
  return [state, effects]
}

/**
 * Ready tasks the budget keeps back, and nothing running or retrying that could make a
 * critical one ready (or free a reservation): the run cannot go on, and stops for its budget.
 */
function noneStarted(state: RunState, event: Extract<RunEvent, { type: 'none-started' }>): readonly [RunState, readonly RunEffect[]] {
  const stalled = event.ready > 0 && event.inFlight === 0 && state.retrying === 0 && !event.affordable
  if (!stalled) return [state, NONE]
  const { budget } = state
  const level = budgetLevel(event.spentUsd, budget.maxCostUsd)
  if (level !== 'open') return [state, [{ type: 'dispatch-later', event: { type: 'stop', reason: budgetStop(level, event.spentUsd, budget) } }]]
  if (event.reserved) return [state, [{ type: 'dispatch-later', event: { type: 'stop', reason: reservationStop(event.spentUsd, budget) } }]]
  return [state, NONE]
}

/** A state in which the task's attempt may be under way (awaiting approval before merge, it is). */
export function isLive(state: TaskState): boolean {
  return state === 'RUNNING' || state === 'WAITING' || state === 'AWAITING_APPROVAL'
}
