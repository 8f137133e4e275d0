import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { renderReport, type ReportContext } from '../dashboard/report.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError, describeValue } from '../runtime/core/errors.ts'
import type { RunResult } from '../runtime/core/result.ts'
import { EXIT } from './exit-codes.ts'

export interface ReportCommandOptions {
  /** @default `troupe-report-<runId>.html` in the current directory */
  readonly out?: string
  readonly config?: string
}

/**
 * `troupe report <runId>`: writes a self-contained HTML report of a finished run from its
 * journal directory (`<checkpoint.dir>/<runId>/result.json`). Returns the exit code.
 */
export function reportCommand(runId: string, options: ReportCommandOptions): number {
  if (!/^[\w.-]{1,128}$/.test(runId) || runId === '.' || runId === '..') {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected a run id of 1-128 letters, digits, '.', '_' or '-', got ${describeValue(runId)}`)
  }
  const config = loadConfig({ file: options.config })
  const root = resolve(config.checkpoint.dir)
  const dir = resolve(root, runId)
  const file = resolve(dir, 'result.json')
  if (!existsSync(file)) {
    const known = existsSync(root) ? readdirSync(root).filter((name) => existsSync(resolve(root, name, 'result.json'))) : []
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `No finished run "${runId}": ${file} does not exist. ${known.length > 0 ? `Finished runs in ${root}: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}.` : `No finished runs in ${root} (checkpoint.dir); pass --config if the journal lives elsewhere.`}`,
    )
  }
  const result = readResult(file)
  const out = resolve(options.out ?? `troupe-report-${runId}.html`)
  writeFileSync(out, renderReport(result, readContext(resolve(dir, 'journal.jsonl'))))
  process.stderr.write(`troupe: report of run ${runId} written to ${out}\n`)
  return EXIT.ok
}

function readResult(file: string): RunResult {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  const r = parsed as Partial<RunResult> | null
  if (r === null || typeof r !== 'object' || typeof r.runId !== 'string' || typeof r.makespanMs !== 'number' || typeof r.tasks !== 'object' || r.tasks === null) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `${file} is not a RunResult: expected an object with runId, makespanMs and tasks`)
  }
  return r as RunResult
}

/**
 * What the journal adds to the report: each task's agent and dependencies, from any
 * record carrying the plan's task specs (`{ plan: { tasks: [{ id, agent, dependsOn }] } }`).
 * A journal that is absent or says nothing of the plan leaves the report without them.
 */
function readContext(journal: string): ReportContext {
  if (!existsSync(journal)) return {}
  const agents: Record<string, string> = {}
  const deps: Record<string, readonly string[]> = {}
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    if (!line.trim()) continue
    let record: { plan?: { tasks?: unknown } }
    try {
      record = JSON.parse(line) as typeof record
    } catch {
      // A torn last line is what a killed run leaves behind; the rest is still good.
      continue
    }
    const tasks = record?.plan?.tasks
    if (!Array.isArray(tasks)) continue
    for (const t of tasks as { id?: unknown; agent?: unknown; dependsOn?: unknown }[]) {
      if (typeof t?.id !== 'string') continue
      if (typeof t.agent === 'string') agents[t.id] = t.agent
      if (Array.isArray(t.dependsOn)) deps[t.id] = t.dependsOn.filter((d): d is string => typeof d === 'string')
    }
  }
  return { agents, deps }
}
