import {
  admissionLimit,
  decide,
  initialGovernorState,
  type GovernorPolicy,
  type GovernorState,
  type ResourceReading,
} from './governor-policy.ts'
import type { GovernorReport } from './governor-policy.ts'

export type { GovernorReport }
import type { Clock } from '../core/clock.ts'
import type { DemandBook } from './demand.ts'
import type { MachineLimits } from './machine-limits.ts'

/** Where readings come from: the machine ({@link SystemProbe}), or a test. */
export interface ResourceProbe {
  sample(): Promise<ResourceReading>
  /**
   * A cheap synchronous reading (load average, `/proc/meminfo`, cgroup files), taken when
   * the governor is made so that no task is admitted before a first reading.
   */
  initial?(): ResourceReading
}

/** The governor held back new starts (`governor:throttled`) or let them go again (`governor:resumed`). */
export interface GovernorEvent {
  /** The resource over its threshold (for `resumed`: the one that had throttled). */
  readonly reason: 'cpu' | 'memory'
  readonly cpuPercent: number
  readonly memoryPercent: number
  readonly memoryUsedMb: number
  readonly at: number
}

/** One governor reading (`governor:sample`, on the runtime only), with the decision it led to. */
export interface GovernorSampleEvent {
  readonly cpuPercent: number
  readonly memoryPercent: number
  readonly memoryUsedMb: number
  /** Why new starts are held back, if they are. */
  readonly throttled: 'cpu' | 'memory' | undefined
  /** Attempts in flight the governor allows across runs (Infinity: no bound but the pool). */
  readonly limit: number
  readonly at: number
}

/**
 * What the governor needs of admission by fit (the admission layer's `FitGate`): it feeds it
 * every reading, samples faster while it learns, and reports its hold times and demand book.
 */
export interface FitObserver {
  readonly learning: boolean
  readonly demand: DemandBook
  observe(reading: ResourceReading, at: number, cpuThrottled?: boolean): void
  heldMs(): { cpu: number; memory: number }
}

/** Fastest sampling while the fit gate learns what a new agent uses. */
const LEARNING_INTERVAL_MS = 50

export interface GovernorOptions<Fit extends FitObserver = FitObserver> {
  readonly probe: ResourceProbe
  readonly clock: Clock
  readonly policy: GovernorPolicy
  readonly sampleIntervalMs: number
  /** Slots of the pool: the most the adaptive limit grows to. */
  readonly capacity: number
  /** Where the adaptive limit starts. */
  readonly initialLimit: number
  readonly inFlight: () => number
  /** Called on throttle, resume and (adaptive) limit changes, after the state changed. */
  readonly onChange: (event: GovernorChange) => void
  /** Admission by fit: fed every reading; its demand book and hold times go in the report. */
  readonly fit?: Fit
  /** The capacity `fit` works with, for the report. */
  readonly machine?: MachineLimits
}

export type GovernorChange =
  | { readonly type: 'governor:throttled' | 'governor:resumed'; readonly event: GovernorEvent }
  | { readonly type: 'limit'; readonly limit: number; readonly at: number }
  | { readonly type: 'governor:sample'; readonly event: GovernorSampleEvent }

type Status = 'idle' | 'sampling' | 'closed'

/**
 * Samples the probe every `sampleIntervalMs` while runs are in flight and turns readings into
 * an admission limit for the dispatcher (see {@link decide}). One sample at a time; the timer
 * is unref'd so a governor never keeps the process alive.
 */
export class Governor<Fit extends FitObserver = FitObserver> {
  readonly #options: GovernorOptions<Fit>
  #state: GovernorState
  #status: Status = 'idle'
  #inSample = false
  #timer: unknown
  #warned = false
  readonly #trackers = new Set<Tracker>()

  constructor(options: GovernorOptions<Fit>) {
    this.#options = options
    this.#state = initialGovernorState(Math.min(options.capacity, options.initialLimit))
    // No blind start: decide on a first reading before anything is admitted.
    const initial = options.probe.initial?.()
    if (initial !== undefined) this.#apply(initial)
  }

  /** Attempts in flight allowed at most (the dispatcher admits one more when none run). */
  get admissionLimit(): number {
    // With admission by fit, CPU pressure holds CPU-bound agents only (in the fit gate):
    // agents that wait on I/O keep flowing. Memory pressure holds everything.
    if (this.#options.fit !== undefined && this.#state.throttled === 'cpu') {
      return admissionLimit({ ...this.#state, throttled: undefined }, this.#options.policy.mode)
    }
    return admissionLimit(this.#state, this.#options.policy.mode)
  }

  /** Admission by fit, when on. */
  get fit(): Fit | undefined {
    return this.#options.fit
  }

  get throttled(): boolean {
    return this.#state.throttled !== undefined
  }

  /** Starts sampling (now, then every interval) unless already sampling. */
  activate(): void {
    if (this.#status !== 'idle') return
    this.#status = 'sampling'
    if (!this.#inSample) this.#sample()
  }

  /**
   * Takes the next reading within the learning interval rather than at the end of the
   * regular one: the fit gate just started an attempt it must learn about.
   */
  sampleSoon(): void {
    if (this.#status !== 'sampling' || this.#inSample || this.#timer === undefined) return
    this.#clearTimer()
    this.#schedule()
  }

  /** Stops sampling once no run is in flight. The last decision stays until the next reading. */
  deactivate(): void {
    if (this.#status !== 'sampling') return
    this.#status = 'idle'
    this.#clearTimer()
  }

  /** Starts recording what the governor does for one run; `end()` returns the report. */
  track(): { end(): GovernorReport } {
    const tracker = new Tracker(this.#options.clock.now(), this.#state, this.#options.policy.mode, this.#options.fit, this.#options.machine)
    this.#trackers.add(tracker)
    return {
      end: () => {
        this.#trackers.delete(tracker)
        return tracker.report(this.#options.clock.now())
      },
    }
  }

  /** Stops sampling for good. The probe belongs to whoever made it. */
  close(): void {
    this.#status = 'closed'
    this.#clearTimer()
  }

  #sample(): void {
    this.#inSample = true
    this.#options.probe.sample().then(
      (reading) => {
        this.#inSample = false
        if (this.#status === 'closed') return
        this.#apply(reading)
        this.#schedule()
      },
      (error: unknown) => {
        this.#inSample = false
        if (this.#status === 'closed') return
        if (!this.#warned) {
          this.#warned = true
          process.emitWarning(`troupe: the governor's probe failed; admission stays as last decided: ${String((error as Error)?.message ?? error)}`, 'TroupeGovernorWarning')
        }
        this.#schedule()
      },
    )
  }

  #schedule(): void {
    if (this.#status !== 'sampling') return
    const interval = this.#options.fit?.learning ? Math.min(LEARNING_INTERVAL_MS, this.#options.sampleIntervalMs) : this.#options.sampleIntervalMs
    const timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined
      if (this.#status === 'sampling') this.#sample()
    }, interval)
    ;(timer as { unref?: () => void } | undefined)?.unref?.()
    this.#timer = timer
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return
    this.#options.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #apply(reading: ResourceReading): void {
    const at = this.#options.clock.now()
    const before = this.#state
    const load = { inFlight: this.#options.inFlight(), capacity: this.#options.capacity }
    this.#state = decide(before, reading, this.#options.policy, load)
    this.#options.fit?.observe(reading, at, this.#state.throttled === 'cpu')
    for (const tracker of this.#trackers) tracker.sampled(reading)
    const after = this.#state
    if (after.throttled !== before.throttled && (after.throttled === undefined || before.throttled === undefined)) {
      const throttling = after.throttled !== undefined
      for (const tracker of this.#trackers) tracker.throttle(throttling, at)
      const event: GovernorEvent = {
        reason: after.throttled ?? before.throttled!,
        cpuPercent: reading.cpuPercent,
        memoryPercent: reading.memoryPercent,
        memoryUsedMb: reading.memoryUsedMb,
        at,
      }
      this.#options.onChange({ type: throttling ? 'governor:throttled' : 'governor:resumed', event })
    }
    if (after.limit !== before.limit && this.#options.policy.mode === 'adaptive') {
      for (const tracker of this.#trackers) tracker.limit(after.limit, at)
      this.#options.onChange({ type: 'limit', limit: after.limit, at })
    }
    this.#options.onChange({ type: 'governor:sample', event: { ...reading, throttled: after.throttled, limit: this.admissionLimit, at } })
  }
}

/** One run's view of the governor. */
class Tracker {
  #throttledMs = 0
  #throttledSince: number | undefined
  #throttleEvents = 0
  #peakCpuPercent = 0
  #peakMemoryMb = 0
  #samples = 0
  readonly #concurrency: { at: number; limit: number }[] | undefined
  readonly #heldAtStart: { cpu: number; memory: number } | undefined

  constructor(
    at: number,
    state: GovernorState,
    readonly mode: GovernorPolicy['mode'],
    readonly fit: FitObserver | undefined,
    readonly machine: MachineLimits | undefined,
  ) {
    this.#heldAtStart = fit?.heldMs()
    if (state.throttled !== undefined) this.throttle(true, at)
    this.#concurrency = mode === 'adaptive' ? [{ at, limit: state.limit }] : undefined
  }

  sampled(reading: ResourceReading): void {
    this.#samples++
    if (reading.cpuPercent > this.#peakCpuPercent) this.#peakCpuPercent = reading.cpuPercent
    if (reading.memoryUsedMb > this.#peakMemoryMb) this.#peakMemoryMb = reading.memoryUsedMb
  }

  throttle(on: boolean, at: number): void {
    if (on && this.#throttledSince === undefined) {
      this.#throttledSince = at
      this.#throttleEvents++
    } else if (!on && this.#throttledSince !== undefined) {
      this.#throttledMs += at - this.#throttledSince
      this.#throttledSince = undefined
    }
  }

  limit(limit: number, at: number): void {
    this.#concurrency?.push({ at, limit })
  }

  report(at: number): GovernorReport {
    const throttledMs = this.#throttledMs + (this.#throttledSince === undefined ? 0 : at - this.#throttledSince)
    return {
      mode: this.mode,
      throttledMs,
      throttleEvents: this.#throttleEvents,
      peakCpuPercent: Math.round(this.#peakCpuPercent * 10) / 10,
      peakMemoryMb: Math.round(this.#peakMemoryMb),
      samples: this.#samples,
      ...(this.#concurrency ? { concurrency: this.#concurrency.slice() } : {}),
      ...(this.fit ? { heldMs: this.#held(), agents: this.fit.demand.snapshot() } : {}),
      ...(this.machine ? { machine: { cores: this.machine.cores, memoryMb: Math.round(this.machine.memoryMb), source: this.machine.source } } : {}),
    }
  }

  #held(): { cpu: number; memory: number } {
    const now = this.fit!.heldMs()
    const start = this.#heldAtStart ?? { cpu: 0, memory: 0 }
    return { cpu: Math.round(now.cpu - start.cpu), memory: Math.round(now.memory - start.memory) }
  }
}
