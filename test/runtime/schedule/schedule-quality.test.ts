import { describe, expect, it } from 'vitest'
import { loadWfInstances } from '../../../src/bench/data/wfinstances.ts'
import { referenceDataDir } from '../../../src/bench/data/reference-graph.ts'
import { gapToTrivialBound, scheduleStg, summarizeGaps, type StgOutcome } from '../../../src/bench/schedule-quality.ts'

// Published STG optima (Tobita & Kasahara 2002), from the vendored subset in data/ (see data/README.md).
const dataDir = referenceDataDir()
const outcomes: StgOutcome[] = scheduleStg(dataDir, 'concurrent')

describe('schedule quality on the vendored STG graphs × 2, 4, 8, 16 workers', () => {
  it('covers every (graph, workers) row of the vendored subset: 99 graphs, 396 rows', () => {
    expect(outcomes.length).toBe(396)
  })

  it('produces only valid schedules: precedence, capacity, never below the proven lower bound', () => {
    const invalid = outcomes.filter((o) => o.violations.length > 0).map((o) => `${o.reference.graph}@${o.reference.procs}: ${o.violations[0]!.message}`)
    expect(invalid).toEqual([])
  })

  it('stays within 0.5 % of the published best on average', () => {
    expect(summarizeGaps(outcomes).meanGap).toBeLessThanOrEqual(0.005)
  })

  it('stays within 1 % of the published best on average on the hard subset', () => {
    const hard = outcomes.filter((o) => o.reference.hard)
    expect([hard.length, summarizeGaps(hard).meanGap <= 0.01]).toEqual([101, true])
  })
})

describe('schedule quality on the WfInstances workflow traces', () => {
  it('produces valid schedules within Graham’s bound of max(CP, W/m)', () => {
    const rows = loadWfInstances(dataDir).flatMap((graph) => [2, 4, 8, 16].map((m) => ({ name: graph.name, m, ...gapToTrivialBound(graph, m) })))
    // Any list schedule is at most W/m + (1 - 1/m) CP <= (2 - 1/m) max(CP, W/m).
    const bad = rows.filter((r) => !r.valid || r.makespan < r.bound - 1e-6 || r.makespan > (2 - 1 / r.m) * r.bound).map((r) => `${r.name}@${r.m}`)
    expect([rows.length, bad]).toEqual([24, []])
  })
})
