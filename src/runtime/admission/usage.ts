/** Resources an agent reports spending with `ctx.usage(...)`. */
export interface Usage {
  readonly costUsd: number
  readonly tokens: number
  readonly apiCalls: number
}

/** One `ctx.usage(...)` call: every field optional, numbers finite and >= 0. */
export interface UsageReport {
  readonly costUsd?: number
  readonly tokens?: number
  readonly apiCalls?: number
  /** The model the spend was on; defaults to the agent's `ctx.model`. */
  readonly model?: string
}

/** `RunResult.usage`: what a run's agents reported, in total, by agent and by model. */
export interface UsageSummary {
  readonly total: Usage
  readonly byAgent: Readonly<Record<string, Usage>>
  readonly byModel: Readonly<Record<string, Usage>>
}

interface Tally {
  costUsd: number
  tokens: number
  apiCalls: number
}

/** Adds up the usage reports of one run. */
export class UsageLedger {
  readonly #total: Tally = zero()
  readonly #byAgent = new Map<string, Tally>()
  readonly #byModel = new Map<string, Tally>()

  get costUsd(): number {
    return this.#total.costUsd
  }

  /** Records one report; fields that are not finite numbers >= 0 count as 0. */
  add(agent: string, report: UsageReport): void {
    const usage = { costUsd: amount(report.costUsd), tokens: amount(report.tokens), apiCalls: amount(report.apiCalls) }
    addTo(this.#total, usage)
    addTo(tallyOf(this.#byAgent, agent), usage)
    if (typeof report.model === 'string' && report.model !== '') addTo(tallyOf(this.#byModel, report.model), usage)
  }

  summary(): UsageSummary {
    return { total: round(this.#total), byAgent: roundAll(this.#byAgent), byModel: roundAll(this.#byModel) }
  }
}

function zero(): Tally {
  return { costUsd: 0, tokens: 0, apiCalls: 0 }
}

function amount(value: number | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0
}

function addTo(tally: Tally, usage: Usage): void {
  tally.costUsd += usage.costUsd
  tally.tokens += usage.tokens
  tally.apiCalls += usage.apiCalls
}

function tallyOf(map: Map<string, Tally>, key: string): Tally {
  let tally = map.get(key)
  if (tally === undefined) map.set(key, (tally = zero()))
  return tally
}

/** Sums of many small dollar amounts drift in binary; results show them to a millionth. */
function round(tally: Tally): Usage {
  return { costUsd: Math.round(tally.costUsd * 1e6) / 1e6, tokens: tally.tokens, apiCalls: tally.apiCalls }
}

function roundAll(map: Map<string, Tally>): Record<string, Usage> {
  const out: Record<string, Usage> = {}
  for (const [key, tally] of map) out[key] = round(tally)
  return out
}
