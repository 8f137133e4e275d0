import type { GovernorReport } from '../runtime/admission/governor-policy.ts'
/** The runtime events the governor emits; a runtime without a governor emits none. */
export const GOVERNOR_EVENTS = ['governor:throttled', 'governor:resumed', 'governor:sample'] as const
export type GovernorEventName = (typeof GOVERNOR_EVENTS)[number]

/** Thresholds shown next to the gauges (config.governor). */
export interface GovernorThresholds {
  readonly cpu: { readonly throttlePercent: number; readonly resumePercent: number }
  readonly memory: { readonly throttlePercent: number; readonly resumePercent: number }
}

/** What live views show of the governor. `n/a` until it has reported anything. */
export interface GovernorView {
  readonly status: 'n/a' | 'ok' | 'throttled'
  readonly cpuPercent?: number
  readonly memoryPercent?: number
  readonly reason?: string
  readonly at?: number
  readonly thresholds?: GovernorThresholds
  /** A finished run's governor figures (reports). */
  readonly report?: GovernorReport
}

/**
 * Folds governor events into a {@link GovernorView}. The readings are read leniently
 * (`cpuPercent` or `cpu`, at the top level or under `readings`/`reading`), so the view
 * keeps working whatever detail the governor adds to its events.
 */
export class GovernorMonitor {
  #view: GovernorView

  constructor(thresholds?: GovernorThresholds) {
    this.#view = thresholds ? { status: 'n/a', thresholds } : { status: 'n/a' }
  }

  get view(): GovernorView {
    return this.#view
  }

  apply(name: GovernorEventName, event: unknown): void {
    const e = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>
    const readings = [e, e['readings'], e['reading']].filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null)
    const pick = (...keys: string[]): number | undefined => {
      for (const r of readings) for (const k of keys) if (typeof r[k] === 'number' && Number.isFinite(r[k])) return r[k]
      return undefined
    }
    const cpuPercent = pick('cpuPercent', 'cpu')
    const memoryPercent = pick('memoryPercent', 'memory', 'memPercent')
    const reason = typeof e['reason'] === 'string' ? e['reason'] : undefined
    const at = pick('at')
    const previous = this.#view
    const status = name === 'governor:throttled' ? 'throttled' : name === 'governor:resumed' ? 'ok' : previous.status === 'n/a' ? 'ok' : previous.status
    this.#view = {
      status,
      ...(cpuPercent === undefined ? (previous.cpuPercent === undefined ? {} : { cpuPercent: previous.cpuPercent }) : { cpuPercent }),
      ...(memoryPercent === undefined ? (previous.memoryPercent === undefined ? {} : { memoryPercent: previous.memoryPercent }) : { memoryPercent }),
      ...(status === 'throttled' && reason !== undefined ? { reason } : {}),
      ...(at === undefined ? {} : { at }),
      ...(previous.thresholds ? { thresholds: previous.thresholds } : {}),
    }
  }
}
