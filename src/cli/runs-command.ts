import { resolve } from 'node:path'
import { loadConfig } from '../runtime/core/config.ts'
import { listRuns, type RunInfo } from '../runtime/journal/history.ts'
import { EXIT } from './exit-codes.ts'
import { quoteArg } from './quote-arg.ts'
import { terminalText } from './terminal-text.ts'

export interface RunsCommandOptions {
  readonly config?: string
  readonly json?: boolean
}

/**
 * `troupe runs`: the runs in the journal directory (`checkpoint.dir`), newest first, with
 * status, start time and tasks done/total; `--json` prints them as one JSON array.
 */
export function runsCommand(options: RunsCommandOptions): number {
  const root = resolve(loadConfig({ file: options.config }).checkpoint.dir)
  const runs = listRuns(root)
  if (options.json) {
    process.stdout.write(`${JSON.stringify(runs)}\n`)
    return EXIT.ok
  }
  if (runs.length === 0) {
    process.stderr.write(`troupe: no runs in ${root} (checkpoint.dir)\n`)
    return EXIT.ok
  }
  process.stdout.write(`${formatRuns(runs)}\n`)
  for (const run of runs) for (const hint of approvalHints(run)) process.stderr.write(`${hint}\n`)
  return EXIT.ok
}

/** How to decide on each task of `run` awaiting approval: the exact commands. */
export function approvalHints(run: Pick<RunInfo, 'runId' | 'awaitingApproval'>): string[] {
  return run.awaitingApproval.map((task) => {
    const args = terminalText(`${quoteArg(run.runId)} ${quoteArg(task)}`, 400)
    return `troupe: run ${run.runId} awaits approval of task ${terminalText(task, 200)}: troupe approve ${args}  (or add --reject "reason")`
  })
}

/** A plain-text table: one run per line. */
export function formatRuns(runs: readonly RunInfo[]): string {
  const rows = runs.map((run) => [
    run.runId,
    run.awaitingApproval.length > 0 ? `${run.status}, awaiting approval` : run.status,
    run.startedAt === undefined ? '-' : new Date(run.startedAt).toISOString().replace('T', ' ').slice(0, 19),
    `${run.done}/${run.total}${run.cached ? ` (${run.cached} cached)` : ''}`,
    String(run.invocations),
    run.name ?? '',
  ])
  const header = ['RUN ID', 'STATUS', 'STARTED (UTC)', 'DONE', 'INVOCATIONS', 'PLAN']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')
}
