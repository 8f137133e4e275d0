import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { renderReport, type ReportContext } from '../dashboard/report.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import type { RunResult } from '../runtime/core/result.ts'
import { parse } from '../runtime/journal/codec.ts'
import { listRuns } from '../runtime/journal/history.ts'
import { journalFile, resultFile, runDir } from '../runtime/journal/paths.ts'
import { readJournal, summarize } from '../runtime/journal/reader.ts'
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
  writeFileSync(out, renderReport(result, readContext(journalFile(root, id))))
  process.stderr.write(`troupe: report of run ${id} written to ${out}\n`)
  return EXIT.ok
}

function pickRun(root: string, runId: string | undefined, last: boolean): string {
  if (runId !== undefined && last) throw new TroupeError('ERR_ARGUMENT_INVALID', 'Give either a run id or --last, not both')
  const finished = () => listRuns(root).filter((run) => existsSync(resultFile(root, run.runId)))
  if (runId === undefined) {
    if (!last) throw new TroupeError('ERR_ARGUMENT_INVALID', 'Expected a run id, or --last for the newest finished run (`troupe runs` lists them)')
    const newest = finished()[0]
    if (newest === undefined) throw new TroupeError('ERR_ARGUMENT_INVALID', `No finished runs in ${root} (checkpoint.dir); pass --config if the journal lives elsewhere.`)
    return newest.runId
  }
  checkRunId(runId)
  if (!existsSync(resultFile(root, runId))) {
    const known = finished().map((run) => run.runId)
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `No finished run "${runId}": ${resultFile(root, runId)} does not exist. ${known.length > 0 ? `Finished runs in ${root}: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}.` : `No finished runs in ${root} (checkpoint.dir); pass --config if the journal lives elsewhere.`}`,
    )
  }
  return runId
}

function readResult(file: string): RunResult {
  let parsed: unknown
  try {
    parsed = parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  const r = parsed as Partial<RunResult> | null
  if (r === null || typeof r !== 'object' || typeof r.runId !== 'string' || typeof r.makespanMs !== 'number' || typeof r.tasks !== 'object' || r.tasks === null) {
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
  const add = (task: { id: string; agent: string; dependsOn?: readonly string[] | undefined; description?: string | undefined; tags?: readonly string[] | undefined }) => {
    agents[task.id] = task.agent
    deps[task.id] = task.dependsOn ?? []
    if (task.description !== undefined || task.tags !== undefined) about[task.id] = { ...(task.description === undefined ? {} : { description: task.description }), ...(task.tags === undefined ? {} : { tags: task.tags }) }
  }
  for (const task of tasks) add(task)
  // Tasks added at run time are in `spawn` records.
  for (const record of contents!.records) if (record.type === 'spawn') for (const task of record.tasks) add(task)
  return { agents, deps, about }
}
