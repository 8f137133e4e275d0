import { checkGoals } from './goals.ts'
import type { BenchOptions, Scenario, ScenarioRow } from './scenario.ts'
import { benchExitCode, currentLoad, machineInfo, type BenchReport, type ScenarioFailure } from './report.ts'

export interface HarnessOptions extends BenchOptions {
  /** The command line, recorded in the report. */
  readonly command: string
  readonly now?: () => Date
}

/**
 * Runs scenarios one after another (never side by side: they would steal each other's
 * cores) and gathers their rows into a report. A scenario that throws is recorded as a
 * failure and the others still run.
 */
export async function runScenarios(scenarios: readonly Scenario[], options: HarnessOptions): Promise<BenchReport> {
  const now = options.now ?? (() => new Date())
  const started = now()
  const machine = machineInfo()
  const rows: ScenarioRow[] = []
  const failures: ScenarioFailure[] = []
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
    goals: checkGoals(rows),
    exitCode: benchExitCode(rows, failures),
  }
}
