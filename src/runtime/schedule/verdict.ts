export type Parallelization = 'PARALLEL' | 'PARTIAL' | 'SEQUENTIAL'

/**
 * The parallelization verdict (docs/library.md "RunResult"): PARALLEL when the makespan is within 20 % of the lower bound,
 * PARTIAL when it saves at least 20 % over sequential, else SEQUENTIAL.
 */
export function classifyParallelization(makespanMs: number, lowerBoundMs: number, sequentialMs: number): Parallelization {
  if (makespanMs <= 1.2 * lowerBoundMs) return 'PARALLEL'
  if (makespanMs <= 0.8 * sequentialMs) return 'PARTIAL'
  return 'SEQUENTIAL'
}
