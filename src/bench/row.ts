import { classifyParallelization } from '../runtime/schedule/verdict.ts'
import type { ScenarioRow } from './scenario.ts'
import { round3 } from './stats.ts'

export interface RowFigures {
  readonly scenario: string
  readonly label: string
  /** Median parallel makespan. */
  readonly makespanMs: number
  /** Median sequential baseline (maxParallel 1), measured in the same process. */
  readonly sequentialMs: number
  /** The ideal makespan: the lower bound (or published optimum) for this scenario. */
  readonly idealMs: number
  /** Slots the parallel run had: efficiency is speedup per slot. */
  readonly parallelism: number
  readonly claimed?: string
  readonly extra?: Readonly<Record<string, unknown>>
}

/** Derives speedup, efficiency, ratio to ideal and the PARALLEL / PARTIAL / SEQUENTIAL verdict from the measured times. */
export function scenarioRow(figures: RowFigures): ScenarioRow {
  const { makespanMs, sequentialMs, idealMs, parallelism } = figures
  if (!(makespanMs > 0) || !(sequentialMs > 0) || !(idealMs > 0)) {
    throw new RangeError(`scenario "${figures.scenario}" row "${figures.label}": times must be > 0 ms, got makespan ${makespanMs}, sequential ${sequentialMs}, ideal ${idealMs}`)
  }
  const speedup = sequentialMs / makespanMs
  return {
    scenario: figures.scenario,
    label: figures.label,
    makespanMs: round3(makespanMs),
    sequentialMs: round3(sequentialMs),
    speedup: round3(speedup),
    efficiency: round3(speedup / parallelism),
    idealMs: round3(idealMs),
    ratioToIdeal: round3(makespanMs / idealMs),
    verdict: classifyParallelization(makespanMs, idealMs, sequentialMs),
    ...(figures.claimed === undefined ? {} : { claimed: figures.claimed }),
    ...(figures.extra === undefined ? {} : { extra: figures.extra }),
  }
}
