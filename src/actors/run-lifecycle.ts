import { assign, setup } from 'xstate'
import type { SerializedError } from '../runtime/core/errors.ts'
import type { RunStatus } from '../runtime/report/result.ts'

/**
 * Why a run stopped before every task ended on its own:
 * - `cancel`: `run.cancel()`, the run's AbortSignal, or the runtime closed with `force`
 * - `fail`: `run.fail(error)` from outside
 * - `crash-loop`: worker crashes past the supervision policy's restart intensity
 * - `budget-pause`: the budget ran out with `onExceeded: "pause"`: running attempts finish
 * - `budget-fail`: the budget ran out with `onExceeded: "fail"`: running attempts are stopped
 */
export type StopKind = 'cancel' | 'fail' | 'crash-loop' | 'budget-pause' | 'budget-fail'

export interface StopReason {
  readonly kind: StopKind
  /** The run's error, and the error of every task it cancels. */
  readonly error: SerializedError
}

export type LifecycleEvent =
  /** Stop early; the first reason wins. */
  | { readonly type: 'STOP'; readonly reason: StopReason }
  /** Budget `pause`: no new starts, running attempts finish; the reason is kept for the result. */
  | { readonly type: 'PAUSE'; readonly reason: StopReason }
  /** The budget was raised while paused: starts again. */
  | { readonly type: 'RESUME' }
  /** Every task has ended and no attempt or timer is left: the result is being recorded. */
  | { readonly type: 'SETTLED' }
  /** The result is in the journal: the run is over. */
  | { readonly type: 'RECORDED' }

/**
 * `running → stopping{reason} → recording → ended`, or `running → recording → ended`; with a
 * budget that pauses, `running ⇄ paused{reason}`, and `paused → recording` once nothing runs.
 */
export type LifecycleState = 'running' | 'paused' | 'stopping' | 'recording' | 'ended'

/**
 * The lifecycle of a run, as one state instead of a set of booleans: the run's final status
 * derives from this state's stop reason (see {@link runStatus}) and nowhere else.
 */
export const runLifecycle = setup({
  types: {
    context: {} as { readonly reason: StopReason | undefined },
    events: {} as LifecycleEvent,
  },
}).createMachine({
  id: 'run',
  initial: 'running',
  context: { reason: undefined },
  states: {
    running: {
      on: {
        STOP: { target: 'stopping', actions: assign({ reason: ({ event }) => event.reason }) },
        PAUSE: { target: 'paused', actions: assign({ reason: ({ event }) => event.reason }) },
        SETTLED: 'recording',
      },
    },
    paused: {
      on: {
        STOP: { target: 'stopping', actions: assign({ reason: ({ event }) => event.reason }) },
        RESUME: { target: 'running', actions: assign({ reason: () => undefined }) },
        SETTLED: 'recording',
      },
    },
    stopping: { on: { SETTLED: 'recording' } },
    recording: { on: { RECORDED: 'ended' } },
    ended: { type: 'final' },
  },
})

/** Whether stopping for `reason` aborts the attempts in flight (budget "pause" lets them finish). */
export function abortsRunning(reason: StopReason): boolean {
  return reason.kind !== 'budget-pause'
}

/** The run's status: from its stop reason, else from whether every task completed. */
export function runStatus(reason: StopReason | undefined, allCompleted: boolean): RunStatus {
  if (reason === undefined) return allCompleted ? 'completed' : 'failed'
  if (reason.kind === 'budget-pause') return 'paused'
  return reason.kind === 'cancel' ? 'cancelled' : 'failed'
}
