/**
 * What each agent costs: CPU (cores busy while an attempt runs) and peak memory, as an
 * exponentially weighted moving average over its completed attempts, seeded by a task's
 * `resources: { cpu, memoryMb }` until the first measurement arrives.
 */

/** One agent's predicted demand per attempt. */
export interface AgentDemand {
  /** Cores busy while an attempt runs (0.02: waits on I/O; 1: one core busy). */
  readonly cpu: number
  /** Peak resident memory of an attempt, MB; absent when never measured nor declared. */
  readonly memoryMb?: number
  /** Attempts measured so far (0: the plan's declaration only). */
  readonly samples: number
  readonly source: 'plan' | 'measured'
}

/** A measured attempt: CPU time over wall time, and peak RSS when known. */
export interface DemandSample {
  readonly cpuMs: number
  readonly wallMs: number
  readonly peakRssMb?: number
}

/** Weight of the newest measurement. */
const ALPHA = 0.4

export class DemandBook {
  readonly #agents = new Map<string, AgentDemand>()
  #version = 0

  /** Changes whenever an estimate does (so a decision made on the estimates can be reused until then). */
  get version(): number {
    return this.#version
  }

  /** Declares an agent's demand from the plan, unless it has been measured already. */
  seed(agent: string, resources: unknown): void {
    const current = this.#agents.get(agent)
    if (current?.source === 'measured' || typeof resources !== 'object' || resources === null) return
    const { cpu, memoryMb } = resources as { cpu?: unknown; memoryMb?: unknown }
    if (typeof cpu !== 'number' || !Number.isFinite(cpu) || cpu < 0) return
    const mb = typeof memoryMb === 'number' && Number.isFinite(memoryMb) && memoryMb >= 0 ? memoryMb : undefined
    // Every task of an agent declares it again: the same declaration changes nothing.
    if (current !== undefined && current.cpu === cpu && current.memoryMb === mb) return
    this.#version++
    this.#agents.set(agent, {
      cpu,
      ...(typeof memoryMb === 'number' && Number.isFinite(memoryMb) && memoryMb >= 0 ? { memoryMb } : {}),
      samples: 0,
      source: 'plan',
    })
  }

  record(agent: string, sample: DemandSample): void {
    if (!(sample.wallMs > 0) || !(sample.cpuMs >= 0)) return
    const cpu = sample.cpuMs / sample.wallMs
    const before = this.#agents.get(agent)
    const measured = before?.source === 'measured' ? before : undefined
    this.#version++
    const memoryMb = sample.peakRssMb === undefined ? measured?.memoryMb : measured?.memoryMb === undefined ? sample.peakRssMb : ewma(measured.memoryMb, sample.peakRssMb)
    this.#agents.set(agent, {
      cpu: measured ? ewma(measured.cpu, cpu) : cpu,
      ...(memoryMb !== undefined ? { memoryMb } : before?.memoryMb !== undefined ? { memoryMb: before.memoryMb } : {}),
      samples: (measured?.samples ?? 0) + 1,
      source: 'measured',
    })
  }

  estimate(agent: string): AgentDemand | undefined {
    return this.#agents.get(agent)
  }

  /** Every agent's estimate, rounded for reports. */
  snapshot(): Record<string, AgentDemand> {
    const out: Record<string, AgentDemand> = {}
    for (const [agent, demand] of this.#agents) {
      out[agent] = {
        ...demand,
        cpu: Math.round(demand.cpu * 100) / 100,
        ...(demand.memoryMb !== undefined ? { memoryMb: Math.round(demand.memoryMb) } : {}),
      }
    }
    return out
  }
}

function ewma(previous: number, next: number): number {
  return previous + ALPHA * (next - previous)
}

/**
 * One line per agent for `troupe plan` and the live view, e.g.
 * `analyse-file  ~1.0 CPU  ~420 MB  (measured, 5 attempts)`, from
 * {@link DemandBook.snapshot} (`Runtime.agentDemand()`, `RunResult.governor.agents`).
 */
export function describeAgentDemand(estimates: Readonly<Record<string, AgentDemand>>): string[] {
  const names = Object.keys(estimates).sort()
  const width = Math.max(0, ...names.map((name) => name.length))
  return names.map((name) => {
    const demand = estimates[name]!
    const memory = demand.memoryMb === undefined ? '' : `  ~${Math.round(demand.memoryMb)} MB`
    const origin = demand.source === 'plan' ? 'declared' : `measured, ${demand.samples} attempt${demand.samples === 1 ? '' : 's'}`
    return `${name.padEnd(width)}  ~${demand.cpu.toFixed(1)} CPU${memory}  (${origin})`
  })
}
