import type { LimitConfig } from '../core/config.ts'
import { TroupeError, describeValue } from '../core/errors.ts'
import type { CompiledPlan, CompiledTask } from '../plan/plan.ts'
import type { Clock } from '../core/clock.ts'
import type { Gate } from './gate.ts'

/** Gives back a unit taken with {@link Limits.acquire}. Calling it again does nothing. */
export type ReleaseLimit = () => void

/** Limits paused because a provider rate-limited a task that uses them. */
export interface LimitPause {
  readonly limits: readonly string[]
  /** Epoch ms when they admit again. */
  readonly until: number
  /** The task whose attempt was rate-limited. */
  readonly taskId: string
  /** The run of that task, when the caller named it. */
  readonly runId: string | undefined
  readonly at: number
}

interface Waiter {
  readonly resolve: (release: ReleaseLimit) => void
}

/** One named limit: a counting semaphore (`maxConcurrent`) and a token bucket (`perSecond`). */
class Limit {
  readonly name: string
  readonly #max: number
  readonly #rate: number
  /** A full bucket allows a burst of one second's worth (at least one). */
  readonly #burst: number
  #held = 0
  /** A provider's rate limit: nothing is admitted before this time (epoch ms). */
  pausedUntil = 0
  #tokens: number
  #refilledAt: number
  readonly waiters: Waiter[] = []

  constructor(name: string, config: LimitConfig, now: number) {
    this.name = name
    this.#max = config.maxConcurrent ?? Infinity
    this.#rate = config.perSecond ?? Infinity
    this.#burst = Number.isFinite(this.#rate) ? Math.max(1, Math.ceil(this.#rate)) : Infinity
    this.#tokens = this.#burst
    this.#refilledAt = now
  }

  get full(): boolean {
    return this.#held >= this.#max
  }

  hasToken(now: number): boolean {
    if (now < this.pausedUntil) return false
    this.#refill(now)
    return this.#tokens >= 1
  }

  /** Milliseconds until the next token, when the bucket (or a pause) is what blocks. */
  msToToken(now: number): number {
    if (now < this.pausedUntil) return this.pausedUntil - now
    this.#refill(now)
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.#rate)
  }

  take(): void {
    this.#held++
    this.#tokens--
  }

  give(): void {
    this.#held--
  }

  /** Gives back a unit and the token {@link take} spent: the task did not start after all. */
  untake(): void {
    this.#held--
    this.#tokens++
  }

  /** Holds a unit again without spending a token: a task that gave it back while waiting resumes. */
  hold(): void {
    this.#held++
  }

  #refill(now: number): void {
    if (!Number.isFinite(this.#rate)) return
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) * this.#rate) / 1000)
    this.#refilledAt = now
  }
}

/**
 * The named limits of `config.limits`, shared by every run of a runtime. A task's `uses`
 * holds one unit of each named limit for its whole attempt (this class is a run {@link Gate});
 * an agent's `ctx.acquire(name)` holds one until it calls the release function. Agents
 * already waiting in `acquire` go before tasks that have not started.
 */
export class Limits implements Gate {
  readonly #limits = new Map<string, Limit>()
  readonly #clock: Clock
  readonly #wake: () => void
  readonly #timers = new Map<Limit, unknown>()
  readonly #onPause: ((pause: LimitPause) => void) | undefined

  /**
   * `wake` is called when a unit or token frees up (the dispatcher's `request`); `onPause`
   * when a provider's rate limit pauses limits.
   */
  constructor(config: Readonly<Record<string, LimitConfig>>, clock: Clock, wake: () => void, onPause?: (pause: LimitPause) => void) {
    this.#clock = clock
    this.#wake = wake
    this.#onPause = onPause
    for (const [name, limit] of Object.entries(config)) this.#limits.set(name, new Limit(name, limit, clock.now()))
  }

  /** Throws ERR_PLAN_INVALID when a task `uses` a limit that `config.limits` does not define. */
  check(plan: CompiledPlan): void {
    for (const task of plan.tasks) {
      for (const name of task.uses) {
        if (!this.#limits.has(name)) {
          throw new TroupeError(
            'ERR_PLAN_INVALID',
            `Task "${task.id}" uses limit ${describeValue(name)}, which config.limits does not define (defined: ${this.#names()}); add it to config.limits or remove it from the task's \`uses\``,
          )
        }
      }
    }
  }

  tryAcquire(_runId: string, task: CompiledTask): boolean {
    if (task.uses.length === 0) return true
    const now = this.#clock.now()
    const limits = this.#unique(task.uses)
    let admitted = true
    for (const limit of limits) {
      if (limit.waiters.length > 0 || limit.full) admitted = false
      else if (!limit.hasToken(now)) {
        admitted = false
        this.#wakeForToken(limit, now)
      }
    }
    if (admitted) for (const limit of limits) limit.take()
    return admitted
  }

  release(_runId: string, task: CompiledTask): void {
    for (const limit of this.#unique(task.uses)) this.#give(limit)
  }

  /** A later gate refused the task: its units and tokens come back, waking nobody (see Gate.undo). */
  undo(_runId: string, task: CompiledTask): void {
    for (const limit of this.#unique(task.uses)) limit.untake()
  }

  /** A task waiting for tasks it spawned gives its units back (they may need them), until {@link resume}. */
  suspend(runId: string, task: CompiledTask): boolean {
    if (task.uses.length === 0) return false
    this.release(runId, task)
    return true
  }

  /** The task takes its units again once free (no token spent: it is the same call going on). */
  resume(_runId: string, task: CompiledTask): boolean {
    const limits = this.#unique(task.uses)
    if (limits.some((limit) => limit.full)) return false
    for (const limit of limits) limit.hold()
    return true
  }

  /** The attempt ended while waiting: its units were given back when it suspended. */
  releaseSuspended(): void {}

  /**
   * Waits for one unit of limit `name` (FIFO among waiting agents) and resolves with its
   * release function. Rejects with `signal`'s reason if it aborts first.
   */
  acquire(name: string, signal: AbortSignal): Promise<ReleaseLimit> {
    const limit = this.#limits.get(name)
    if (limit === undefined) {
      return Promise.reject(
        new TroupeError('ERR_ARGUMENT_INVALID', `ctx.acquire: no limit named ${describeValue(name)} in config.limits (defined: ${this.#names()})`),
      )
    }
    if (signal.aborted) return Promise.reject(signal.reason)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (release) => {
          signal.removeEventListener('abort', onAbort)
          resolve(release)
        },
      }
      const onAbort = () => {
        const at = limit.waiters.indexOf(waiter)
        if (at !== -1) limit.waiters.splice(at, 1)
        reject(signal.reason)
        // The queue head may have been this waiter, holding back ready tasks.
        this.#wake()
      }
      signal.addEventListener('abort', onAbort, { once: true })
      limit.waiters.push(waiter)
      this.#serve(limit)
    })
  }

  /**
   * A provider rate-limited a task that uses `names`: those limits admit nothing (neither
   * tasks nor `ctx.acquire`) until `until`. Pauses only extend, never shorten; `onPause`
   * is called only when some limit's pause was extended, so N tasks rate-limited by the
   * same reset report one pause.
   */
  pauseUntil(names: readonly string[], until: number, taskId: string, runId?: string): void {
    const now = this.#clock.now()
    const paused: string[] = []
    for (const limit of this.#unique(names)) {
      if (until <= limit.pausedUntil) continue
      limit.pausedUntil = until
      paused.push(limit.name)
      // A refill timer set for an earlier token must not wake the limit inside the pause.
      const timer = this.#timers.get(limit)
      if (timer !== undefined) this.#clock.clearTimeout(timer)
      this.#timers.delete(limit)
      this.#wakeForToken(limit, now)
    }
    if (paused.length > 0) this.#onPause?.({ limits: paused, until, taskId, runId, at: now })
  }

  /** Limits paused by a provider's rate limit right now, with when each resumes. */
  paused(): { readonly name: string; readonly until: number }[] {
    const now = this.#clock.now()
    return [...this.#limits.values()].filter((l) => l.pausedUntil > now).map((l) => ({ name: l.name, until: l.pausedUntil }))
  }

  /** Stops the refill timers. */
  close(): void {
    for (const timer of this.#timers.values()) this.#clock.clearTimeout(timer)
    this.#timers.clear()
  }

  #give(limit: Limit): void {
    limit.give()
    this.#serve(limit)
    this.#wake()
  }

  #serve(limit: Limit): void {
    const now = this.#clock.now()
    while (limit.waiters.length > 0 && !limit.full) {
      if (!limit.hasToken(now)) return this.#wakeForToken(limit, now)
      limit.take()
      let released = false
      limit.waiters.shift()!.resolve(() => {
        if (released) return
        released = true
        this.#give(limit)
      })
    }
  }

  #wakeForToken(limit: Limit, now: number): void {
    if (this.#timers.has(limit)) return
    // Not unref'd: a task or an agent waits for this token, so the process has work left.
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(limit)
      this.#serve(limit)
      this.#wake()
    }, Math.max(1, limit.msToToken(now)))
    this.#timers.set(limit, timer)
  }

  #unique(names: readonly string[]): Limit[] {
    const limits: Limit[] = []
    for (const name of names) {
      const limit = this.#limits.get(name)
      if (limit !== undefined && !limits.includes(limit)) limits.push(limit)
    }
    return limits
  }

  #names(): string {
    return this.#limits.size === 0 ? 'none' : [...this.#limits.keys()].join(', ')
  }
}
