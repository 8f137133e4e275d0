import type { SerializedError } from '../runtime/core/errors.ts'

/** Restart intensity, as in Erlang/OTP supervisors: at most `maxRestarts` crashes per `periodMs`. */
export interface SupervisionPolicy {
  readonly maxRestarts: number
  readonly periodMs: number
}

/**
 * Error codes of attempts that took their worker thread down with them (the pool replaced
 * the thread): a process exit, the heap limit, an exception thrown outside the agent's
 * promise. An agent that merely throws or times out is not a crash.
 */
export const CRASH_CODES: ReadonlySet<string> = new Set(['ERR_WORKER_EXIT', 'ERR_WORKER_OOM', 'ERR_WORKER_CRASH'])

/** What the run should do after a failed attempt. */
export interface CrashVerdict {
  /** Times of the crashes still inside the window, oldest first (the next call's input). */
  readonly crashes: readonly number[]
  /** Set when this failure puts the run over its restart intensity: stop the run with it. */
  readonly stop?: SerializedError
}

/**
 * The supervision rule, pure: `crashes` are the times of the run's earlier crashes, `error`
 * the attempt that just failed at `now`. A crash inside a window of `periodMs` that already
 * holds `maxRestarts` crashes stops the run with ERR_CRASH_LOOP: replacing threads that keep
 * dying only burns CPU. Failures that are not crashes leave the window as it is.
 */
export function crashWindow(crashes: readonly number[], error: SerializedError, now: number, policy: SupervisionPolicy): CrashVerdict {
  if (!CRASH_CODES.has(error.code)) return { crashes }
  const recent = crashes.filter((at) => at > now - policy.periodMs)
  recent.push(now)
  if (recent.length <= policy.maxRestarts) return { crashes: recent }
  return {
    crashes: recent,
    stop: {
      code: 'ERR_CRASH_LOOP',
      message: `Run stopped: ${recent.length} worker crashes within ${policy.periodMs} ms (last: ${error.code}), more than supervision.maxRestarts (${policy.maxRestarts}) per supervision.periodMs`,
    },
  }
}
