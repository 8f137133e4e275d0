/**
 * The governor's decisions, as pure functions of a reading, the thresholds and the previous
 * state: no clock, no threads, no probe. {@link Governor} wires them to a probe and the
 * dispatcher.
 */
import type { AgentDemand } from './demand.ts'

/** One sample of the machine's load. */
export interface ResourceReading {
  /** CPU busy, all cores, 0..100. */
  readonly cpuPercent: number
  /**
   * The part of `cpuPercent` used by troupe: this process (main thread and worker threads)
   * and every process it started, over the same window, all cores, 0..100. Absent: counted as 0.
   */
  readonly ownCpuPercent?: number
  /** Memory in use (excluding buffers and cache), 0..100 of total. */
  readonly memoryPercent: number
  readonly memoryUsedMb: number
  /** Resident memory of troupe and every process it started, MB (Linux). */
  readonly ownMemoryMb?: number
  /** Processes in troupe's tree, itself included (Linux). */
  readonly processes?: number
}

export type GovernorMode = 'threshold' | 'adaptive'
export type ThrottleReason = 'cpu' | 'memory'

/** The thresholds of `config.governor`. */
export interface GovernorPolicy {
  readonly mode: GovernorMode
  readonly cpu: { readonly throttlePercent: number; readonly resumePercent: number; readonly targetPercent: number }
  readonly memory: { readonly throttlePercent: number; readonly resumePercent: number }
}

export interface GovernorState {
  /** Why new starts are held back; `undefined` when they are not. */
  readonly throttled: ThrottleReason | undefined
  /** Adaptive mode: attempts in flight allowed at most. Unused in threshold mode. */
  readonly limit: number
}

/** What the dispatcher sees of the load, for the adaptive increase. */
export interface GovernorLoad {
  readonly inFlight: number
  /** The most the limit may grow to (the pool's slots). */
  readonly capacity: number
}

export function initialGovernorState(limit: number): GovernorState {
  return { throttled: undefined, limit: Math.max(1, limit) }
}

/**
 * The next state after `reading`. Threshold mode compares the CPU load of everything but
 * troupe ({@link externalCpuPercent}) and total memory. Hysteresis: a reading at or above a throttle threshold
 * throttles; once throttled, every reading must be below both resume thresholds to resume.
 * Adaptive mode steers CPU with AIMD on the limit instead of the CPU thresholds: halve it
 * when CPU reaches the target, add one when CPU is below the target and the limit is what
 * holds work back. Memory thresholds throttle in both modes.
 */
export function decide(state: GovernorState, reading: ResourceReading, policy: GovernorPolicy, load: GovernorLoad): GovernorState {
  const throttled = state.throttled === undefined ? pressure(reading, policy, 'throttlePercent') : pressure(reading, policy, 'resumePercent')
  let limit = state.limit
  if (policy.mode === 'adaptive') {
    if (reading.cpuPercent >= policy.cpu.targetPercent) limit = Math.max(1, Math.floor(limit / 2))
    else if (load.inFlight >= limit) limit = Math.min(Math.max(1, load.capacity), limit + 1)
  }
  return throttled === state.throttled && limit === state.limit ? state : { throttled, limit }
}

/**
 * Attempts in flight allowed at most, across runs. 0 while throttled: the dispatcher still
 * admits one when nothing runs, so work under pressure degrades to sequential, never stalls.
 */
export function admissionLimit(state: GovernorState, mode: GovernorMode): number {
  if (state.throttled !== undefined) return 0
  return mode === 'adaptive' ? state.limit : Infinity
}

/**
 * CPU load that troupe did not cause: the machine's minus this process's own. Threshold mode
 * compares this one. troupe's own CPU is already bounded by maxParallel; counting it would
 * make a plan that fills every core throttle itself down to one task at a time.
 */
export function externalCpuPercent(reading: ResourceReading): number {
  return Math.max(0, reading.cpuPercent - (reading.ownCpuPercent ?? 0))
}

function pressure(reading: ResourceReading, policy: GovernorPolicy, level: 'throttlePercent' | 'resumePercent'): ThrottleReason | undefined {
  // Memory first: it holds every start, CPU pressure only CPU-bound ones (see Governor).
  if (reading.memoryPercent >= policy.memory[level]) return 'memory'
  if (policy.mode === 'threshold' && externalCpuPercent(reading) >= policy.cpu[level]) return 'cpu'
  return undefined
}

/** What the governor did during one run: `RunResult.governor`. */
export interface GovernorReport {
  readonly mode: GovernorPolicy['mode']
  /** Time new starts were held back while the run was in flight. */
  readonly throttledMs: number
  /** Throttle periods the run saw (one if it started throttled). */
  readonly throttleEvents: number
  readonly peakCpuPercent: number
  readonly peakMemoryMb: number
  /** Readings taken while the run was in flight. */
  readonly samples: number
  /** Adaptive mode: the admission limit the governor chose, each time it changed (and at the start). */
  readonly concurrency?: readonly { readonly at: number; readonly limit: number }[]
  /** Time ready tasks were held because their predicted demand did not fit, by resource. */
  readonly heldMs?: { readonly cpu: number; readonly memory: number }
  /** Per-agent demand estimates at the end of the run (CPU cores, peak MB; measured or declared). */
  readonly agents?: Readonly<Record<string, AgentDemand>>
  /** The capacity admission fitted into: cores and memory (host or cgroup). */
  readonly machine?: { readonly cores: number; readonly memoryMb: number; readonly source: string }
}
