import { busyHash } from './agents/busy-hash.ts'

/**
 * Hash rounds that take about `targetMs` on one core of this machine. Takes the fastest of
 * several timings: on a shared machine the fastest is the least disturbed one.
 */
export function calibrateRounds(targetMs: number): number {
  const probe = 2_000_000
  busyHash(probe) // JIT warm-up
  let best = Infinity
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now()
    busyHash(probe)
    best = Math.min(best, performance.now() - t0)
  }
  return Math.max(1, Math.round((probe * targetMs) / Math.max(best, 1e-3)))
}
