import type { AgentDemand } from '../runtime/governor/demand.ts'
import type { GovernorReport } from '../runtime/governor/governor-policy.ts'
/** The runtime events the governor emits; a runtime without a governor emits none. */
export const GOVERNOR_EVENTS = ['governor:throttled', 'governor:resumed', 'governor:sample', 'governor:held'] as const
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
  /** The latest task kept queued because it did not fit ("held: build needs ~1.0 CPU, 0.2 free"), and when. */
  readonly held?: { readonly message: string; readonly at: number }
  /** What each agent is predicted to use per attempt (`Runtime.agentDemand()`), as of the latest reading. */
  readonly agents?: Readonly<Record<string, AgentDemand>>
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
  readonly #demand: (() => Readonly<Record<string, AgentDemand>>) | undefined

  /** `demand`: the per-agent estimates, read at each reading (a runtime's `agentDemand`). */
  constructor(thresholds?: GovernorThresholds, demand?: () => Readonly<Record<string, AgentDemand>>) {
    this.#view = thresholds ? { status: 'n/a', thresholds } : { status: 'n/a' }
    this.#demand = demand
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
    if (name === 'governor:held') {
      const message = typeof e['message'] === 'string' ? e['message'] : undefined
      if (message !== undefined) this.#view = { ...previous, held: { message, at: at ?? 0 } }
      return
    }
    const agents = name === 'governor:sample' ? this.#demand?.() : undefined
    const status =
      name === 'governor:throttled' ? 'throttled' : name === 'governor:resumed' ? 'ok' : previous.status === 'n/a' ? 'ok' : previous.status
    this.#view = {
      status,
      ...(cpuPercent === undefined ? (previous.cpuPercent === undefined ? {} : { cpuPercent: previous.cpuPercent }) : { cpuPercent }),
      ...(memoryPercent === undefined
        ? previous.memoryPercent === undefined
          ? {}
          : { memoryPercent: previous.memoryPercent }
        : { memoryPercent }),
      ...(status === 'throttled' && reason !== undefined ? { reason } : {}),
      ...(at === undefined ? {} : { at }),
      ...(previous.thresholds ? { thresholds: previous.thresholds } : {}),
      ...(previous.held ? { held: previous.held } : {}),
      ...(agents !== undefined && Object.keys(agents).length > 0 ? { agents } : previous.agents ? { agents: previous.agents } : {}),
    }
  }
}
