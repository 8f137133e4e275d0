import { describe, expect, it } from 'vitest'
import { effectiveParallelism, speedupFigures } from '../../../src/runtime/schedule/speedup.ts'
import type { Graph } from '../../../src/runtime/plan/graph.ts'

/** n tasks with no dependencies. */
function independent(n: number): Graph {
  return { deps: Array.from({ length: n }, () => []), dependents: Array.from({ length: n }, () => []) }
}

describe('effectiveParallelism', () => {
  it('is maxParallel when the governor held nothing for CPU', () => {
    expect(effectiveParallelism(64, { machine: { cores: 2 }, heldMs: { cpu: 0 } })).toBe(64)
  })

  it("is the machine's cores when the governor held CPU-bound tasks to them", () => {
    expect(effectiveParallelism(64, { machine: { cores: 2 }, heldMs: { cpu: 120 } })).toBe(2)
  })

  it('is maxParallel without a governor report', () => {
    expect(effectiveParallelism(8, undefined)).toBe(8)
  })
})

describe('speedupFigures', () => {
  it('judges four 100 ms tasks run two at a time on two slots as bounded by the slots, and PARALLEL', () => {
    const span = (startedAt: number) => ({ startedAt, finishedAt: startedAt + 100, durationMs: 100 })
    const figures = speedupFigures(independent(4), [0, 1, 2, 3], [span(0), span(0), span(100), span(100)], 2)
    expect(figures).toMatchObject({ makespanMs: 200, sequentialMs: 400, lowerBoundMs: 200, boundedBy: 'slots', parallelism: 2 })
    expect(figures.parallelization).toBe('PARALLEL')
  })
})
