import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { dirname, resolve } from 'node:path'
import Table from 'cli-table3'
import type { GoalCheck } from './goals.ts'
import type { ScenarioRow } from './scenario.ts'

/** Where and under what load the bench ran: speedups mean little without it. */
export interface MachineInfo {
  readonly node: string
  readonly platform: string
  readonly cpuModel: string
  readonly cores: number
  readonly totalMemMb: number
  /** 1-minute load average when the bench started and ended (other processes included). */
  readonly loadAvgStart: number
  readonly loadAvgEnd?: number
}

/** A scenario that threw instead of producing rows. */
export interface ScenarioFailure {
  readonly scenario: string
  readonly error: string
}

/** A scenario left out because optional reference data is absent. */
export interface ScenarioSkip {
  readonly scenario: string
  readonly reason: string
}

/** The JSON report of one `npm run bench`. */
export interface BenchReport {
  readonly command: string
  readonly quick: boolean
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationMs: number
  readonly machine: MachineInfo
  readonly rows: readonly ScenarioRow[]
  readonly failures: readonly ScenarioFailure[]
  /** Scenarios skipped for missing optional data: they do not change the exit code. */
  readonly skipped: readonly ScenarioSkip[]
  /** The issue's goals against the rows (informational: they do not change the exit code). */
  readonly goals: readonly GoalCheck[]
  /** 1 when a row is SEQUENTIAL or a scenario failed, else 0. */
  readonly exitCode: 0 | 1
}

export function machineInfo(): MachineInfo {
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    totalMemMb: Math.round(totalmem() / 2 ** 20),
    loadAvgStart: round2(loadavg()[0]!),
  }
}

export function currentLoad(): number {
  return round2(loadavg()[0]!)
}

/** The bench fails when any row is SEQUENTIAL (parallel execution did not pay) or a scenario failed. */
export function benchExitCode(rows: readonly ScenarioRow[], failures: readonly ScenarioFailure[]): 0 | 1 {
  return failures.length > 0 || rows.some((row) => row.verdict === 'SEQUENTIAL') ? 1 : 0
}

/** Default report path: `bench-results/bench-<timestamp>.json` under `cwd`. */
export function defaultReportPath(cwd: string, at: Date): string {
  return resolve(cwd, 'bench-results', `bench-${at.toISOString().replace(/[:.]/g, '-')}.json`)
}

export function writeReport(report: BenchReport, file: string): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
}

const HEAD = ['scenario', 'label', 'makespan', 'sequential', 'speedup', 'efficiency', 'ideal', 'ratio to ideal', 'verdict', 'claimed']

/** Widest line of the stdout table: it fits a 100-column terminal. */
export const TABLE_WIDTH = 100

const TABLE_HEAD = ['scenario: label (claimed)', 'makespan', 'ideal', 'vs ideal', 'sequential', 'speedup', 'eff.', 'verdict']
const TABLE_WIDTHS = [35, 9, 9, 8, 10, 7, 4, 10]
const TABLE_CHARS = {
  top: '─', 'top-mid': '─', 'top-left': '', 'top-right': '', bottom: '─', 'bottom-mid': '─', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '─', 'mid-mid': '─', right: '', 'right-mid': '', middle: ' ',
}

/**
 * The stdout table, times in ms: troupe's makespan beside the ideal (raw piscina, make -j, the
 * lower bound — the label says which) and the sequential run, the label wrapped in its column
 * so that every line fits {@link TABLE_WIDTH} columns.
 */
export function formatTable(rows: readonly ScenarioRow[]): string {
  const table = new Table({
    head: TABLE_HEAD,
    chars: TABLE_CHARS,
    colWidths: TABLE_WIDTHS,
    wordWrap: true,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  })
  for (const row of rows) {
    table.push([
      `${row.scenario}: ${row.label}${row.claimed ? ` (claimed ${row.claimed})` : ''}`,
      formatMs(row.makespanMs),
      formatMs(row.idealMs),
      row.ratioToIdeal.toFixed(3),
      formatMs(row.sequentialMs),
      `${row.speedup.toFixed(2)}x`,
      `${(row.efficiency * 100).toFixed(0)}%`,
      row.verdict,
    ])
  }
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
}

/** The same rows as a Markdown table (for the README). */
export function formatMarkdown(rows: readonly ScenarioRow[]): string {
  const lines = [`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`]
  for (const row of rows) {
    lines.push(
      `| ${row.scenario} | ${row.label} | ${formatMs(row.makespanMs)} | ${formatMs(row.sequentialMs)} | ${row.speedup.toFixed(2)}x | ${(row.efficiency * 100).toFixed(0)}% | ${formatMs(row.idealMs)} | ${row.ratioToIdeal.toFixed(3)} | ${row.verdict} | ${row.claimed ?? ''} |`,
    )
  }
  return lines.join('\n')
}

function formatMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`
}

function round2(value: number): number {
  return Math.round(value * 100) / 100
}
