import { PROBE_MS } from './protocol.ts'

/** Event-loop utilisation below which an agent's attempts mostly wait and may share a thread. */
export const WAITING_UTILIZATION = 0.25

/**
 * How long attempts of an agent whose first attempts are being probed wait for the answer
 * before they start on threads of their own. An agent whose code never yields cannot
 * answer a probe: silence this long means it keeps its thread busy.
 */
export const PROBE_DEADLINE_MS = 250

/**
 * Where an attempt runs: `share` a thread with other waiting attempts, `alone` on a thread of
 * its own, `probe` alone and report how busy its thread is after {@link PROBE_MS}, or `hold`
 * it until the first probes of its agent have answered.
 */
export type ThreadRoute = 'share' | 'alone' | 'probe' | 'hold'

/** What is known of an agent's use of its thread: it `waits`, keeps it `busy`, or its attempts end too soon to tell. */
type Verdict = 'waits' | 'busy' | 'short'

interface AgentUse {
  verdict: Verdict | undefined
  /** Attempts running with a probe, their answer not yet in. */
  probing: number
  /** Attempts held for the verdict, in arrival order: each starts when called with its route. */
  readonly held: ((route: 'share' | 'alone') => void)[]
  deadline: ReturnType<typeof setTimeout> | undefined
}

/**
 * Learns, per agent, whether its attempts keep their worker thread's event loop busy or
 * mostly wait, from the threads themselves: so agents that wait share threads even when
 * nothing told the pool (the governor off, an agent never measured), and a wide fan-out of
 * them does not start a thread each (a cold thread costs ~40 ms of CPU).
 *
 * An agent not yet known runs its first attempts alone, one per core at most, each with a
 * probe: after {@link PROBE_MS} its thread posts its event-loop utilisation. Further attempts
 * wait for the first answer — never longer than {@link PROBE_DEADLINE_MS} — then share a
 * thread (it waits) or take their own (it is busy). Beyond the cores, CPU-bound attempts
 * could not have run at once anyway, so holding them costs no throughput. Every attempt
 * that runs long enough refines the verdict from its own thread's figures.
 */
export class ThreadUse {
  readonly #agents = new Map<string, AgentUse>()
  readonly #probeSlots: number
  readonly #deadlineMs: number

  /** `probeSlots`: attempts of an unknown agent probed at once (the cores). */
  constructor(probeSlots: number, deadlineMs = PROBE_DEADLINE_MS) {
    this.#probeSlots = Math.max(1, probeSlots)
    this.#deadlineMs = deadlineMs
  }

  /** Where the next attempt of `agent` runs. A `probe` route counts until {@link ended}. */
  route(agent: string): ThreadRoute {
    const use = this.#use(agent)
    switch (use.verdict) {
      case 'waits':
        return 'share'
      case 'busy':
      case 'short':
        return 'alone'
      case undefined:
        if (use.probing < this.#probeSlots) {
          use.probing++
          return 'probe'
        }
        return 'hold'
    }
  }

  /** Holds an attempt routed `hold`: `start` is called with its route once the agent's first probe answers. */
  hold(agent: string, start: (route: 'share' | 'alone') => void): void {
    const use = this.#use(agent)
    use.held.push(start)
    use.deadline ??= setTimeout(() => {
      use.deadline = undefined
      // No answer in time: the probed attempts' threads are busy, or they started late.
      if (use.verdict === undefined) this.#decide(use, 'busy')
    }, this.#deadlineMs)
    use.deadline.unref?.()
  }

  /** A probed attempt's thread answered: its event-loop utilisation since the agent was called. */
  probed(agent: string, utilization: number): void {
    const use = this.#agents.get(agent)
    if (use === undefined || !Number.isFinite(utilization)) return
    this.#decide(use, utilization < WAITING_UTILIZATION ? 'waits' : 'busy')
  }

  /**
   * An attempt of `agent` ended, with its thread's event-loop active and wall time when known
   * (an attempt that shared a thread counts its neighbours' work too, which errs towards `busy`).
   */
  ended(agent: string, probe: boolean, resources: { readonly cpuMs: number; readonly wallMs: number } | undefined): void {
    const use = this.#agents.get(agent)
    if (use === undefined) return
    if (probe) use.probing--
    if (resources !== undefined && resources.wallMs >= PROBE_MS) {
      this.#decide(use, resources.cpuMs / resources.wallMs < WAITING_UTILIZATION ? 'waits' : 'busy')
    } else if (probe && use.verdict === undefined) {
      // Ended before its probe: too short to tell, and too short to be worth holding others for.
      this.#decide(use, 'short')
    }
  }

  /** Starts every held attempt alone and stops the deadlines (the pool closes). */
  close(): void {
    for (const use of this.#agents.values()) this.#release(use, 'alone')
  }

  #decide(use: AgentUse, verdict: Verdict): void {
    // A short attempt says nothing against an agent already judged on a longer one.
    if (verdict === 'short' && use.verdict !== undefined) return
    use.verdict = verdict
    this.#release(use, verdict === 'waits' ? 'share' : 'alone')
  }

  #release(use: AgentUse, route: 'share' | 'alone'): void {
    if (use.deadline !== undefined) clearTimeout(use.deadline)
    use.deadline = undefined
    const held = use.held.splice(0)
    for (const start of held) start(route)
  }

  #use(agent: string): AgentUse {
    let use = this.#agents.get(agent)
    if (use === undefined) {
      use = { verdict: undefined, probing: 0, held: [], deadline: undefined }
      this.#agents.set(agent, use)
    }
    return use
  }
}
