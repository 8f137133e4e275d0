import { loadWfInstances } from '../data/wfinstances.ts'
import { loadStgReferences } from '../data/stg.ts'
import { scenarioRow } from '../row.ts'
import type { Scenario, ScenarioRow } from '../scenario.ts'
import { gapToTrivialBound, scheduleStg, summarizeGaps, type StgOutcome } from '../schedule-quality.ts'
import { round3 } from '../stats.ts'

const PROCS = [2, 4, 8, 16] as const

/**
 * Schedule quality against published optima: troupe's scheduler on a virtual clock (no
 * threads) over the vendored Kasahara STG graphs (99 of 360, see data/README.md) × 2, 4, 8, 16 processors, every schedule
 * validated, for `concurrent` and the `waves` baseline; then the WfInstances workflow traces
 * against max(CP, W/m). Times are in the data's units (STG: abstract units, summed over the
 * graphs of a row; WfInstances: ms). Deterministic: one repetition, quick or not.
 */
const scenario: Scenario = {
  name: 'stg-quality',
  description: 'simulated schedules of the vendored STG graphs (99 of the 360) × 2/4/8/16 workers vs the published optima (concurrent and waves), and WfInstances traces vs max(CP, W/m)',
  async run(options) {
    const references = loadStgReferences(options.dataDir)
    const rows: ScenarioRow[] = []
    for (const strategy of ['concurrent', 'waves'] as const) {
      const outcomes = scheduleStg(options.dataDir, strategy, references)
      const all = summarizeGaps(outcomes)
      const hard = summarizeGaps(outcomes.filter((o) => o.reference.hard))
      options.log(`  ${strategy}: mean gap ${percent(all.meanGap)} (hard subset ${percent(hard.meanGap)}), ${all.invalid} invalid of ${all.rows}`)
      for (const m of PROCS) rows.push(stgRow(strategy, `m=${m}`, m, outcomes.filter((o) => o.reference.procs === m)))
      rows.push(stgRow(strategy, 'all m', 7.5, outcomes, { hardSubset: gapFigures(hard) }))
    }
    const graphs = loadWfInstances(options.dataDir)
    for (const m of PROCS) {
      const perWorkflow = graphs.map((graph) => ({ name: graph.name.replace(/\.dag\.tsv$/, ''), work: total(graph.durations), ...gapToTrivialBound(graph, m) }))
      const gaps = Object.fromEntries(perWorkflow.map((w) => [w.name, round3(w.gap)]))
      rows.push(
        scenarioRow({
          scenario: 'stg-quality',
          label: `WfInstances (6 traces) m=${m} vs max(CP, W/m)`,
          makespanMs: sum(perWorkflow.map((w) => w.makespan)),
          sequentialMs: sum(perWorkflow.map((w) => w.work)),
          idealMs: sum(perWorkflow.map((w) => w.bound)),
          parallelism: m,
          extra: {
            simulated: true,
            meanGapToBound: round3(mean(perWorkflow.map((w) => w.gap))),
            gapToBound: gaps,
            invalid: perWorkflow.filter((w) => !w.valid).length,
          },
        }),
      )
      options.log(`  WfInstances m=${m}: ${perWorkflow.map((w) => `${w.name.split('-')[0]} ${percent(w.gap)}`).join(', ')}`)
    }
    return rows
  },
}

export default scenario

function stgRow(strategy: string, label: string, parallelism: number, outcomes: readonly StgOutcome[], extra: Record<string, unknown> = {}): ScenarioRow {
  return scenarioRow({
    scenario: 'stg-quality',
    label: `STG ${strategy} ${label} (${outcomes.length} graphs) vs published best`,
    makespanMs: sum(outcomes.map((o) => o.makespan)),
    sequentialMs: sum(outcomes.map((o) => o.reference.totalWork)),
    idealMs: sum(outcomes.map((o) => o.reference.optUpper)),
    parallelism,
    extra: { simulated: true, strategy, ...gapFigures(summarizeGaps(outcomes)), ...extra },
  })
}

function gapFigures(summary: ReturnType<typeof summarizeGaps>): Record<string, number> {
  return { rows: summary.rows, meanGap: Number(summary.meanGap.toFixed(6)), maxGap: round3(summary.maxGap), atPublishedBest: summary.atBest, invalid: summary.invalid }
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0)
const mean = (values: readonly number[]) => (values.length === 0 ? 0 : sum(values) / values.length)
const total = (values: Float64Array) => values.reduce((a, b) => a + b, 0)
const percent = (ratio: number) => `${(ratio * 100).toFixed(2)} %`
