import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type EarlierAttempt, renderReport, REPORT_LOGS, type ReportContext } from '../dashboard/report.ts'
import { type ApprovalView, approvalView, readRunMessages } from '../monitor/run-facts.ts'
import { type Note, parseNotes, SCRATCHPAD_FILE } from '../runtime/coordination/scratchpad.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import type { RunResult } from '../runtime/report/result.ts'
import { parse } from '../runtime/journal/codec.ts'
import { listRuns } from '../runtime/journal/history.ts'
import { journalFile, loggedAttempts, resultFile, runDir } from '../runtime/journal/paths.ts'
import { readJournal, summarize } from '../runtime/journal/reader.ts'
import type { JournalRecord } from '../runtime/journal/records.ts'
import { EXIT } from './exit-codes.ts'
import { checkRunId } from './run-id.ts'

export interface ReportCommandOptions {
  /** @default `<checkpoint.dir>/<runId>/report.html` */
  readonly out?: string
  readonly config?: string
  /** Report the newest finished run. */
  readonly last?: boolean
}

/**
 * `troupe report <runId>` / `troupe report --last`: writes a self-contained HTML report of a
 * finished run from its directory (`<checkpoint.dir>/<runId>/result.json` and its journal),
 * by default to `<checkpoint.dir>/<runId>/report.html`. Returns the exit code.
 */
export function reportCommand(runId: string | undefined, options: ReportCommandOptions): number {
  const config = loadConfig({ file: options.config })
  const root = resolve(config.checkpoint.dir)
  const id = pickRun(root, runId, options.last ?? false)
  const file = resultFile(root, id)
  const result = readResult(file)
  const out = resolve(options.out ?? resolve(runDir(root, id), 'report.html'))
  const dir = runDir(root, id)
  const context = { ...readContext(journalFile(root, id)), logs: readLogs(dir), notes: readNotes(dir), messages: readRunMessages(dir) }
  writeFileSync(out, renderReport(result, context))
  process.stderr.write(`troupe: report of run ${id} written to ${out}\n`)
  return EXIT.ok
}

function pickRun(root: string, runId: string | undefined, last: boolean): string {
  if (runId !== undefined && last) throw new TroupeError('ERR_ARGUMENT_INVALID', 'Give either a run id or --last, not both')
  const finished = () => listRuns(root).filter((run) => existsSync(resultFile(root, run.runId)))
  if (runId === undefined) {
    if (!last) {
      throw new TroupeError('ERR_ARGUMENT_INVALID', 'Expected a run id, or --last for the newest finished run (`troupe runs` lists them)')
    }
    const newest = finished()[0]
    if (newest === undefined) throw new TroupeError('ERR_ARGUMENT_INVALID', noFinishedRuns(root))
    return newest.runId
  }
  checkRunId(runId)
  if (!existsSync(resultFile(root, runId))) {
    const known = finished().map((run) => run.runId)
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `No finished run "${runId}": ${resultFile(root, runId)} does not exist. ${
        known.length > 0
          ? `Finished runs in ${root}: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}.`
          : noFinishedRuns(root)
      }`,
    )
  }
  return runId
}

function noFinishedRuns(root: string): string {
  return `No finished runs in ${root} (checkpoint.dir); pass --config if the journal lives elsewhere.`
}

function readResult(file: string): RunResult {
  let parsed: unknown
  try {
    parsed = parse(readFileSync(file, 'utf8'))
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Cannot read ${file}: ${why}`, { cause: error })
  }
  const r = parsed as Partial<RunResult> | null
  const shaped = r !== null && typeof r === 'object' && typeof r.runId === 'string' && typeof r.makespanMs === 'number'
  if (!shaped || typeof r.tasks !== 'object' || r.tasks === null) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `${file} is not a RunResult: expected an object with runId, makespanMs and tasks`)
  }
  return r as RunResult
}

/** What the journal adds to the report: each task's agent and dependencies, from the latest run-start and the additions. */
function readContext(journal: string): ReportContext {
  let contents
  try {
    contents = readJournal(journal)
  } catch {
    // result.json is the report; a damaged journal only costs the agents and dependencies.
    return {}
  }
  const tasks = contents === undefined ? undefined : summarize(contents.records).lastStart?.plan.tasks
  if (tasks === undefined) return {}
  const agents: Record<string, string> = {}
  const deps: Record<string, readonly string[]> = {}
  const about: Record<string, { description?: string; tags?: readonly string[] }> = {}
  type Shape = {
    id: string
    agent: string
    dependsOn?: readonly string[] | undefined
    description?: string | undefined
    tags?: readonly string[] | undefined
  }
  const add = (task: Shape) => {
    agents[task.id] = task.agent
    deps[task.id] = task.dependsOn ?? []
    if (task.description !== undefined || task.tags !== undefined) {
      about[task.id] = {
        ...(task.description === undefined ? {} : { description: task.description }),
        ...(task.tags === undefined ? {} : { tags: task.tags }),
      }
    }
  }
  for (const task of tasks) add(task)
  // Tasks added at run time are in `spawn` records.
  for (const record of contents!.records) if (record.type === 'spawn') for (const task of record.tasks) add(task)
  return { agents, deps, about, earlier: earlierAttempts(contents!.records), approvals: latestApprovals(contents!.records) }
}

/** Each gated task's latest approval record (awaiting, approved or rejected), for its card and drill-down. */
function latestApprovals(records: readonly JournalRecord[]): Record<string, ApprovalView> {
  const latest: Record<string, ApprovalView> = {}
  for (const record of records) if (record.type === 'approval') latest[record.task] = approvalView(record)
  return latest
}

/**
 * Each task's records but its latest (which the RunResult shows): attempts of earlier
 * invocations of a resumed run, failed ones included, for the timeline.
 */
function earlierAttempts(records: readonly JournalRecord[]): Record<string, EarlierAttempt[]> {
  const byTask = new Map<string, Extract<JournalRecord, { type: 'task' }>[]>()
  for (const record of records) {
    if (record.type !== 'task') continue
    const list = byTask.get(record.id) ?? []
    list.push(record)
    byTask.set(record.id, list)
  }
  const earlier: Record<string, EarlierAttempt[]> = {}
  for (const [id, list] of byTask) {
    const before = list.slice(0, -1).filter((r) => r.startedAt !== undefined && r.finishedAt !== undefined)
    if (before.length === 0) continue
    earlier[id] = before.map((r) => ({ attempt: r.attempt, start: r.startedAt!, end: r.finishedAt!, state: r.state }))
  }
  return earlier
}

/** Every task's stored log lines, attempt after attempt (a line marks each attempt after the first); the last REPORT_LOGS. */
function readLogs(dir: string): Record<string, string[]> {
  const logs: Record<string, string[]> = {}
  const root = join(dir, 'logs')
  if (!existsSync(root)) return logs
  for (const segment of readdirSync(root)) {
    const attempts = loggedAttempts(join(root, segment))
    const lines: string[] = []
    for (const attempt of attempts) {
      if (attempts.length > 1) lines.push(`── attempt ${attempt} ──`)
      const text = readFileSync(join(root, segment, `${attempt}.log`), 'utf8')
      lines.push(...text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined))
      if (lines.length > 4 * REPORT_LOGS) lines.splice(0, lines.length - REPORT_LOGS)
    }
    logs[decodeURIComponent(segment)] = lines.slice(-REPORT_LOGS)
  }
  return logs
}

function readNotes(dir: string): Note[] {
  const file = join(dir, SCRATCHPAD_FILE)
  return existsSync(file) ? parseNotes(readFileSync(file, 'utf8')) : []
}
