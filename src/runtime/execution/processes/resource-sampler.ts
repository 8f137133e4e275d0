import type { AttemptResources } from '../executor.ts'
import { watchProcs } from './proc-watch.ts'
import type { ProcIndex } from './process-tree.ts'

/** How often the process groups in flight are sampled. */
const SAMPLE_INTERVAL_MS = 250

/** A memory cap on one group: `onExceeded` is called once, at the first sample over it. */
export interface RssCap {
  readonly maxRssBytes: number
  readonly onExceeded: (rssBytes: number) => void
}

interface Tracked {
  cpuMs: number
  peakRssBytes: number
  cap: RssCap | undefined
  readonly startedAt: number
  readonly warmupMs: number
  /** CPU and time when the warm-up ended (the first sample after it). */
  warm: { readonly cpuMs: number; readonly at: number } | undefined
}

/**
 * Measures what each attempt's process group uses, from `/proc`: one reading of the process
 * table per tick for all groups at once, shared with containment's capture (proc-watch.ts).
 * CPU is the group's largest observed sum of user + system time (including children its
 * members reaped); RSS is the peak sum. A sampling estimate: work done between the last tick
 * and the exit is not seen. A group with
 * a cap is reported once its RSS sum goes over it (at the next tick: a fast allocator can
 * overshoot for up to one interval).
 */
export class ResourceSampler {
  readonly #groups = new Map<number, Tracked>()
  #unwatch: (() => void) | undefined

  /**
   * `warmupMs`: the start-up to leave out of the CPU measurement (a CLI's start-up burst), when
   * the attempt then ran at least as long again: the result's `cpuMs` and `wallMs` then cover
   * the steady state only.
   */
  track(pgid: number, cap?: RssCap, warmupMs = 0): { stop(): AttemptResources } {
    const tracked: Tracked = { cpuMs: 0, peakRssBytes: 0, cap, startedAt: Date.now(), warmupMs, warm: undefined }
    this.#groups.set(pgid, tracked)
    this.#unwatch ??= watchProcs(SAMPLE_INTERVAL_MS, (procs) => this.#sample(procs))
    return {
      stop: () => {
        this.#groups.delete(pgid)
        if (this.#groups.size === 0) this.close()
        const now = Date.now()
        const warm = tracked.warm
        const steady = warm !== undefined && now - warm.at >= tracked.warmupMs
        const resources: AttemptResources = steady
          ? { cpuMs: Math.round(Math.max(0, tracked.cpuMs - warm.cpuMs)), wallMs: now - warm.at }
          : { cpuMs: Math.round(tracked.cpuMs) }
        return tracked.peakRssBytes > 0 ? { ...resources, peakRssMb: Math.round((tracked.peakRssBytes / 1024 / 1024) * 10) / 10 } : resources
      },
    }
  }

  close(): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #sample(procs: ProcIndex): void {
    for (const [pgid, tracked] of this.#groups) {
      const members = procs.groups.get(pgid)
      if (members === undefined) continue
      const sum = { cpuMs: 0, rssBytes: 0 }
      for (const entry of members) {
        sum.cpuMs += entry.cpuMs
        sum.rssBytes += entry.rssBytes
      }
      tracked.cpuMs = Math.max(tracked.cpuMs, sum.cpuMs)
      tracked.peakRssBytes = Math.max(tracked.peakRssBytes, sum.rssBytes)
      const now = Date.now()
      const warmedUp = tracked.warmupMs > 0 && now - tracked.startedAt >= tracked.warmupMs
      if (tracked.warm === undefined && warmedUp) tracked.warm = { cpuMs: tracked.cpuMs, at: now }
      const cap = tracked.cap
      if (cap !== undefined && sum.rssBytes > cap.maxRssBytes) {
        tracked.cap = undefined
        cap.onExceeded(sum.rssBytes)
      }
    }
  }
}
