import { simulate, validateSchedule, type ScheduleViolation, type Strategy } from '../index.ts'
import type { ReferenceGraph } from './data/reference-graph.ts'
import { loadStg, loadStgReferences, type StgReference } from './data/stg.ts'

/** One simulated schedule of an STG graph, checked against its published bounds. */
export interface StgOutcome {
  readonly reference: StgReference
  readonly makespan: number
  /** (makespan - optUpper) / optUpper; negative when troupe beat the published best. */
  readonly gap: number
  /** Precedence, capacity and duration violations, plus `makespan < optLower`. */
  readonly violations: readonly (ScheduleViolation | { readonly kind: 'below-lower-bound'; readonly message: string })[]
}

export interface GapSummary {
  readonly rows: number
  readonly meanGap: number
  readonly maxGap: number
  /** Rows where the makespan equals the published best (or beats it). */
  readonly atBest: number
  readonly invalid: number
}

/**
 * Schedules every STG graph of `references` with the simulated scheduler and validates
 * each schedule. Graphs are parsed once per file, whatever the number of processor counts.
 */
export function scheduleStg(dataDir: string, strategy: Strategy, references: readonly StgReference[] = loadStgReferences(dataDir)): StgOutcome[] {
  const graphs = new Map<string, ReferenceGraph>()
  return references.map((reference) => {
    let graph = graphs.get(reference.graph)
    if (graph === undefined) graphs.set(reference.graph, (graph = loadStg(dataDir, reference.graph)))
    const { makespanMs, start, finish } = simulate(graph.plan, { workers: reference.procs, strategy, durations: graph.durations })
    const violations: StgOutcome['violations'][number][] = validateSchedule(graph.plan, graph.durations, start, finish, reference.procs)
    if (makespanMs < reference.optLower) {
      violations.push({ kind: 'below-lower-bound', message: `makespan ${makespanMs} is below the proven lower bound ${reference.optLower}` })
    }
    return { reference, makespan: makespanMs, gap: (makespanMs - reference.optUpper) / reference.optUpper, violations }
  })
}

/** Mean and worst gap to the published best over `outcomes`. */
export function summarizeGaps(outcomes: readonly StgOutcome[]): GapSummary {
  let sum = 0
  let max = -Infinity
  let atBest = 0
  let invalid = 0
  for (const o of outcomes) {
    sum += o.gap
    if (o.gap > max) max = o.gap
    if (o.gap <= 0) atBest++
    if (o.violations.length > 0) invalid++
  }
  return { rows: outcomes.length, meanGap: outcomes.length === 0 ? 0 : sum / outcomes.length, maxGap: outcomes.length === 0 ? 0 : max, atBest, invalid }
}

/** Gap of a simulated schedule to the trivial bound max(CP, W/m), for graphs without a published optimum. */
export function gapToTrivialBound(graph: ReferenceGraph, workers: number, strategy: Strategy = 'concurrent'): { makespan: number; bound: number; gap: number; valid: boolean } {
  const { makespanMs, start, finish } = simulate(graph.plan, { workers, strategy, durations: graph.durations })
  let work = 0
  for (const d of graph.durations) work += d
  let cp = 0
  const finishAt = new Float64Array(graph.durations.length)
  for (const task of graph.plan.order) {
    let ready = 0
    for (const dep of graph.plan.deps[task]!) if (finishAt[dep]! > ready) ready = finishAt[dep]!
    finishAt[task] = ready + graph.durations[task]!
    if (finishAt[task]! > cp) cp = finishAt[task]!
  }
  const bound = Math.max(cp, work / workers)
  const valid = validateSchedule(graph.plan, graph.durations, start, finish, workers).length === 0
  return { makespan: makespanMs, bound, gap: (makespanMs - bound) / bound, valid }
}
