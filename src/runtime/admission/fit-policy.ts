/**
 * Admission by fit, as pure functions: a queued attempt starts when its predicted CPU and
 * memory fit the headroom — the machine's capacity, minus what other programs use, minus
 * what troupe's running attempts are predicted to use. No clock, no probe.
 */

/** CPU an agent with no measurement and no declaration is assumed to take until troupe has watched it run. */
export const UNKNOWN_CPU = 1
/** Below this many cores an attempt counts as waiting (LLM calls, sleeps, network): it never waits for CPU. */
export const WAITING_CPU = 0.1
/** Rounding slack so that two attempts measured at 1.02 cores still share two cores. */
const CPU_SLACK = 0.25

export interface Headroom {
  /** Cores troupe may use (host or cgroup quota). */
  readonly cores: number
  /** Cores busy with programs that are not troupe nor started by it, at the last reading. */
  readonly othersCpu: number
  /** Memory troupe may use in all, MB (host or cgroup limit). */
  readonly memoryMb: number
  /** Memory in use at the last reading, MB (everyone's, troupe's included). */
  readonly memoryUsedMb: number
  /**
   * The CPU threshold (the safety net) is crossed: CPU-bound attempts get one core between
   * them, waiting attempts still flow.
   */
  readonly cpuThrottled?: boolean
}

export interface Running {
  readonly attempts: number
  /** Sum of the predicted CPU of the attempts in flight. */
  readonly cpu: number
}

export type FitVerdict =
  | { readonly fits: true }
  | { readonly fits: false; readonly reason: 'cpu' | 'memory'; readonly need: number; readonly free: number }

/**
 * Whether an attempt predicted to take `cpu` cores and `memoryMb` fits. With nothing in
 * flight it always does (work degrades to sequential, never stalls). Troupe always keeps at
 * least one core of its own however busy the others are, and CPU-bound attempts together
 * never get more than the cores.
 */
export function fit(headroom: Headroom, running: Running, cpu: number, memoryMb: number | undefined): FitVerdict {
  if (running.attempts === 0) return { fits: true }
  if (cpu >= WAITING_CPU) {
    const free = (headroom.cpuThrottled ? 1 : Math.max(1, headroom.cores - headroom.othersCpu)) - running.cpu
    if (cpu > free + CPU_SLACK) return { fits: false, reason: 'cpu', need: round(cpu), free: round(Math.max(0, free)) }
  }
  if (memoryMb !== undefined) {
    const free = headroom.memoryMb - headroom.memoryUsedMb
    if (memoryMb > free) return { fits: false, reason: 'memory', need: Math.round(memoryMb), free: Math.round(Math.max(0, free)) }
  }
  return { fits: true }
}

/**
 * Cores per attempt of agents troupe has not measured yet, from a reading taken while they
 * ran: troupe's measured CPU minus what its measured agents are predicted to use, shared
 * among the unmeasured attempts. `saturated`: the machine was (nearly) fully busy.
 */
export function liveUnknownCpu(ownCpu: number, knownCpu: number, unknownAttempts: number, saturated: boolean): number {
  if (unknownAttempts <= 0) return UNKNOWN_CPU
  const total = Math.max(0, ownCpu - knownCpu)
  const each = Math.min(UNKNOWN_CPU, total / unknownAttempts)
  // On a saturated machine an attempt gets only a share of what it would use: any real CPU
  // use then says "CPU-bound", only a near-zero one says "waiting" — and a whole core among
  // many attempts is no near-zero use, however thinly it spreads.
  return saturated && (each >= WAITING_CPU || total >= UNKNOWN_CPU) ? UNKNOWN_CPU : each
}

/** "held: analyse-file needs ~1.0 CPU, 0.2 free" */
export function describeHold(agent: string, verdict: Extract<FitVerdict, { fits: false }>): string {
  return verdict.reason === 'cpu'
    ? `held: ${agent} needs ~${verdict.need.toFixed(1)} CPU, ${verdict.free.toFixed(1)} free`
    : `held: ${agent} needs ~${verdict.need} MB, ${verdict.free} MB free`
}

function round(value: number): number {
  return Math.round(value * 10) / 10
}
