/**
 * Bench agent: a SIMULATED LLM call. It only waits `ms` milliseconds (the latency of a model
 * call) and uses no CPU, so many can overlap on few cores, as real API-bound agents do.
 */
import { setTimeout as sleep } from 'node:timers/promises'

export interface SimulatedLlmInput {
  readonly ms: number
}

export default async function agent(input: SimulatedLlmInput): Promise<{ simulated: true; ms: number }> {
  await sleep(input.ms)
  return { simulated: true, ms: input.ms }
}
