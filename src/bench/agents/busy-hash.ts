/**
 * Bench agent: real CPU work. Runs a fixed number of FNV-1a rounds (a fixed amount of work,
 * not a fixed wall time, so a task slowed down by a busy core takes longer, as real CPU-bound
 * work would). `calibrate()` finds the round count for a target duration on this machine.
 */
export interface BusyHashInput {
  readonly rounds: number
}

/** FNV-1a over the round counter; returns the hash so the loop cannot be optimised away. */
export function busyHash(rounds: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < rounds; i++) {
    hash ^= i & 0xff
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

export default async function agent(input: BusyHashInput): Promise<{ hash: number }> {
  return { hash: busyHash(input.rounds) }
}
