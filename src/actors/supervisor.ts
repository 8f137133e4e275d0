import type { SerializedError } from '../runtime/core/errors.ts'
import type { TaskStateEvent } from '../runtime/core/events.ts'
import type { Run } from '../runtime/run.ts'

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

/**
 * Counts worker crashes of one run inside a sliding window. Past the restart intensity the
 * run should stop instead of spinning: replacing threads that keep dying only burns CPU.
 * Pure; the clock is injected.
 */
export class Supervisor {
  readonly #policy: SupervisionPolicy
  readonly #now: () => number
  /** Times of the crashes still inside the window, oldest first. */
  readonly #crashes: number[] = []

  constructor(policy: SupervisionPolicy, now: () => number) {
    this.#policy = policy
    this.#now = now
  }

  /** Crashes inside the current window. */
  get recentCrashes(): number {
    this.#expire(this.#now())
    return this.#crashes.length
  }

  /**
   * Records a failed attempt. Returns the error to stop the run with when this crash puts
   * the run over its restart intensity, else undefined.
   */
  attemptFailed(error: SerializedError): SerializedError | undefined {
    if (!CRASH_CODES.has(error.code)) return undefined
    const now = this.#now()
    this.#expire(now)
    this.#crashes.push(now)
    if (this.#crashes.length <= this.#policy.maxRestarts) return undefined
    const { maxRestarts, periodMs } = this.#policy
    return {
      code: 'ERR_CRASH_LOOP',
      message: `Run stopped: ${this.#crashes.length} worker crashes within ${periodMs} ms (last: ${error.code}), more than supervision.maxRestarts (${maxRestarts}) per supervision.periodMs`,
    }
  }

  #expire(now: number): void {
    while (this.#crashes.length > 0 && this.#crashes[0]! <= now - this.#policy.periodMs) this.#crashes.shift()
  }
}

/**
 * Supervises `run`: every attempt that leaves RUNNING with a crash is counted, and past the
 * restart intensity the run is failed fast with ERR_CRASH_LOOP (tasks not yet ended become
 * CANCELLED, running ones are stopped).
 */
export function superviseRun(run: Run, policy: SupervisionPolicy, now: () => number): void {
  const supervisor = new Supervisor(policy, now)
  const onState = (event: TaskStateEvent) => {
    if (event.previous !== 'RUNNING' || event.error === undefined) return
    const stop = supervisor.attemptFailed(event.error)
    if (stop) {
      run.off('task:state', onState)
      void run.fail(stop)
    }
  }
  run.on('task:state', onState)
}
