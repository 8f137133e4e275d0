import { DatasetMissingError } from './data/dataset.ts'
import { checkGoals } from './goals.ts'
import type { BenchOptions, Scenario, ScenarioRow } from './scenario.ts'
import { benchExitCode, currentLoad, machineInfo, type BenchReport, type ScenarioFailure, type ScenarioSkip } from './report.ts'

export interface HarnessOptions extends BenchOptions {
  /** The command line, recorded in the report. */
  readonly command: string
  readonly now?: () => Date
}

/**
 * Runs scenarios one after another (never side by side: they would steal each other's
 * cores) and gathers their rows into a report. A scenario that throws is recorded as a
 * failure and the others still run; one whose reference data is absent is skipped, in one line.
 */
export async function runScenarios(scenarios: readonly Scenario[], options: HarnessOptions): Promise<BenchReport> {
  const now = options.now ?? (() => new Date())
  const started = now()
  const machine = machineInfo()
  const rows: ScenarioRow[] = []
  const failures: ScenarioFailure[] = []
  const skipped: ScenarioSkip[] = []
  for (const scenario of scenarios) {
    options.log(`bench: ${scenario.name} — ${scenario.description}`)
    const t0 = performance.now()
    try {
      const produced = await scenario.run(options)
      rows.push(...produced)
      for (const row of produced) {
        options.log(`  ${row.label}: ${row.makespanMs.toFixed(1)} ms vs ${row.sequentialMs.toFixed(1)} ms sequential, ${row.speedup.toFixed(2)}x, ${row.verdict}`)
      }
    } catch (error) {
      if (error instanceof DatasetMissingError) {
        skipped.push({ scenario: scenario.name, reason: error.message })
        options.log(`  skipped: ${error.message}`)
        continue
      }
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
      failures.push({ scenario: scenario.name, error: message })
      options.log(`  FAILED: ${message}`)
    }
    options.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s, load ${currentLoad()})`)
  }
  const finished = now()
  return {
    command: options.command,
    quick: options.quick,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    machine: { ...machine, loadAvgEnd: currentLoad() },
    rows,
    failures,
    skipped,
    goals: checkGoals(rows),
    exitCode: benchExitCode(rows, failures),
  }
}
