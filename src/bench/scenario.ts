import type { Parallelization } from '../index.ts'

/** Options every scenario receives from `npm run bench`. */
export interface BenchOptions {
  /** `--quick`: fewer repetitions and smaller inputs, for CI smoke runs (< 1 min in all). */
  readonly quick: boolean
  /** The scheduling reference data (the repository's `data/`, see data/README.md). */
  readonly dataDir: string
  /** Writes a progress line to stderr. */
  readonly log: (line: string) => void
}

/** One measured row of the bench report. Times are medians over repetitions, in ms. */
export interface ScenarioRow {
  readonly scenario: string
  /** What the row compares, e.g. "troupe vs sequential", "troupe / raw piscina". */
  readonly label: string
  readonly makespanMs: number
  readonly sequentialMs: number
  readonly speedup: number
  readonly efficiency: number
  /** The ideal makespan (lower bound) for this scenario. */
  readonly idealMs: number
  /** makespanMs / idealMs. */
  readonly ratioToIdeal: number
  readonly verdict: Parallelization
  /** The figure the seed documents claim for this scenario, if any, e.g. "3.2x". */
  readonly claimed?: string
  /** Free-form extra figures for the JSON report (throughput, gaps, samples …). */
  readonly extra?: Readonly<Record<string, unknown>>
}

/** A bench scenario: `src/bench/scenarios/<name>.ts` default-exports one. */
export interface Scenario {
  readonly name: string
  readonly description: string
  run(options: BenchOptions): Promise<readonly ScenarioRow[]>
}
