import { TroupeError } from '../index.ts'
import { referenceDataDir } from './data/reference-graph.ts'
import { formatGoals } from './goals.ts'
import { runScenarios } from './harness.ts'
import { defaultReportPath, formatTable, writeReport } from './report.ts'
import type { Scenario } from './scenario.ts'
import commands from './scenarios/commands.ts'
import cpu from './scenarios/cpu.ts'
import dag from './scenarios/dag.ts'
import io from './scenarios/io.ts'
import overhead from './scenarios/overhead.ts'
import redis from './scenarios/redis.ts'
import scale from './scenarios/scale.ts'
import seeds from './scenarios/seeds.ts'
import spawn from './scenarios/spawn.ts'
import stgQuality from './scenarios/stg-quality.ts'
import strategies from './scenarios/strategies.ts'
import mixed from './scenarios/mixed.ts'
import worktrees from './scenarios/worktrees.ts'

/** Every scenario of `npm run bench`, in the order they run and print. */
export const SCENARIOS: readonly Scenario[] = [cpu, io, seeds, dag, strategies, stgQuality, overhead, scale, spawn, mixed, commands, worktrees, redis]

export interface BenchMainOptions {
  /** Fewer repetitions and smaller inputs: under a minute in all. @default false */
  readonly quick?: boolean
  /** Where the JSON report goes. @default bench-results/bench-<timestamp>.json */
  readonly jsonOut?: string
  /** Run only these scenarios, by name. @default all */
  readonly only?: readonly string[]
  /** The scheduling reference data. @default `TROUPE_DATA_DIR`, else the repository's vendored data/ */
  readonly dataDir?: string
  readonly command?: string
}

export interface BenchIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly cwd: string
}

const processIo: BenchIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  cwd: process.cwd(),
}

/**
 * Runs the bench: progress on stderr, the table on stdout, the JSON report to a file whose
 * path is printed. Returns the exit code: 1 when a row is SEQUENTIAL or a scenario failed.
 */
export async function runBench(options: BenchMainOptions = {}, io: BenchIo = processIo): Promise<number> {
  const only = options.only
  const unknown = only?.filter((name) => !SCENARIOS.some((s) => s.name === name)) ?? []
  if (unknown.length > 0) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Unknown bench scenario ${unknown.map((n) => `"${n}"`).join(', ')}; expected one of ${SCENARIOS.map((s) => s.name).join(', ')}`)
  }
  const scenarios = only === undefined ? SCENARIOS : SCENARIOS.filter((s) => only.includes(s.name))
  const quick = options.quick ?? false
  const report = await runScenarios(scenarios, {
    quick,
    dataDir: options.dataDir ?? referenceDataDir(),
    log: (line) => io.stderr(`${line}\n`),
    command: options.command ?? `troupe bench${quick ? ' --quick' : ''}`,
  })
  const file = options.jsonOut ?? defaultReportPath(io.cwd, new Date(report.startedAt))
  writeReport(report, file)
  io.stdout(`${formatTable(report.rows)}\n`)
  if (report.goals.length > 0) io.stdout(`goals:\n${formatGoals(report.goals)}\n`)
  for (const skip of report.skipped) io.stdout(`skipped ${skip.scenario}: ${skip.reason}\n`)
  for (const failure of report.failures) io.stdout(`FAILED ${failure.scenario}: ${failure.error.split('\n')[0]}\n`)
  const sequential = report.rows.filter((row) => row.verdict === 'SEQUENTIAL')
  for (const row of sequential) io.stdout(`SEQUENTIAL: ${row.scenario} / ${row.label}\n`)
  io.stdout(
    `${report.machine.cores} cores, ${report.machine.cpuModel}, Node ${report.machine.node}; load average ${report.machine.loadAvgStart} at start, ${report.machine.loadAvgEnd} at end; ${(report.durationMs / 1000).toFixed(1)} s\n`,
  )
  io.stdout(`report: ${file}\n`)
  return report.exitCode
}
