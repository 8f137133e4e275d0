import { rmSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { stopLeftovers } from '../runtime/journal/process-ledger.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError, describeValue } from '../runtime/core/errors.ts'
import { journaledRunIds, journalFile, runDirNames } from '../runtime/journal/paths.ts'
import { git } from '../runtime/workspace/git.ts'
import { cleanWorktrees } from '../runtime/workspace/clean.ts'
import { isRunLive } from '../runtime/workspace/run-liveness.ts'
import { EXIT } from './exit-codes.ts'
import { plural } from './summary.ts'

export interface CleanCommandOptions {
  /** Only this run's leftovers. */
  readonly runId?: string
  readonly config?: string
  /** The repository to clean. @default the current directory */
  readonly cwd?: string
  /** `--older-than 7d`: only runs last active longer ago than this, and their run directories (journal, logs) too. */
  readonly olderThan?: string
  /** Now, for the age filter. @default Date.now */
  readonly now?: () => number
}

/**
 * `troupe clean [--run-id ID] [--older-than 7d]`: kills the agent processes that runs no longer
 * running left (their process ledgers, see process-ledger.ts), then removes the task worktrees
 * and task branches they left in the repository of the current directory (a killed `troupe run`
 * that will not be resumed). Integration branches stay: they hold merged work. With
 * `--older-than`, only runs last active before then, and their run directories (journal, logs)
 * too; outside a git repository it removes run directories. Returns the exit code.
 */
export async function cleanCommand(options: CleanCommandOptions): Promise<number> {
  const cwd = resolve(options.cwd ?? process.cwd())
  const only = options.runId
  if (only !== undefined && (!/^[\w.-]{1,128}$/.test(only) || only === '.' || only === '..')) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`--run-id\` to be 1-128 letters, digits, '.', '_' or '-', got ${describeValue(only)}`)
  }
  const olderThanMs = options.olderThan === undefined ? undefined : parseAge(options.olderThan)
  const inGit = (await git(cwd, ['rev-parse', '--show-toplevel'])).exitCode === 0
  const checkpointDir = resolve(cwd, loadConfig({ file: options.config }).checkpoint.dir)
  if (only !== undefined && isRunLive(checkpointDir, only)) {
    throw new TroupeError('ERR_RUN_LOCKED', `Run "${only}" is still running (its process holds ${resolve(checkpointDir, only)}); stop it first, or let it finish — it removes its own worktrees`)
  }
  let killed = 0
  for (const runId of only !== undefined ? [only] : runDirNames(checkpointDir)) {
    if (!isRunLive(checkpointDir, runId)) killed += await stopLeftovers(join(checkpointDir, runId))
  }
  if (killed > 0) process.stderr.write(`troupe: killed ${killed} processes left running by killed runs\n`)
  const now = (options.now ?? Date.now)()
  const old = (runId: string) => olderThanMs === undefined || lastActive(checkpointDir, runId) <= now - olderThanMs
  // Asked for every worktree and branch: each run's liveness (its lock, its journal) and age are read once.
  const sparedRuns = new Map<string, boolean>()
  const spared = (runId: string) => {
    let isSpared = sparedRuns.get(runId)
    if (isSpared === undefined) {
      isSpared = (only !== undefined && runId !== only) || isRunLive(checkpointDir, runId) || !old(runId)
      sparedRuns.set(runId, isSpared)
    }
    return isSpared
  }
  let worktrees = 0
  let branches = 0
  if (inGit) {
    const report = await cleanWorktrees(cwd, spared)
    for (const path of report.worktrees) process.stderr.write(`troupe: removed worktree ${path}\n`)
    for (const branch of report.branches) process.stderr.write(`troupe: deleted branch ${branch}\n`)
    worktrees = report.worktrees.length
    branches = report.branches.length
  }
  // Run directories (journal, logs, scratchpad) go with --older-than, or outside a git
  // repository, where there are no worktrees and the runs are what there is to clean.
  let runs = 0
  if (olderThanMs !== undefined || !inGit) {
    for (const runId of journaledRunIds(checkpointDir)) {
      if (spared(runId)) continue
      rmSync(join(checkpointDir, runId), { recursive: true, force: true })
      process.stderr.write(`troupe: removed run ${runId}\n`)
      runs++
    }
  }
  const what = [...(inGit ? [plural(worktrees, 'worktree'), plural(branches, 'branch')] : []), ...(olderThanMs !== undefined || !inGit ? [plural(runs, 'run')] : [])]
  const scope = [only === undefined ? '' : `run ${only}`, options.olderThan === undefined ? '' : `older than ${options.olderThan}`].filter(Boolean).join(', ')
  process.stderr.write(`troupe: clean: ${what.join(', ')} removed${scope === '' ? '' : ` (${scope})`}${inGit ? '' : ' — not in a git repository, so no worktrees'}\n`)
  return EXIT.ok
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `7d`, `12h`, `30m`, `45s`, `2w` in milliseconds; anything else is ERR_ARGUMENT_INVALID. */
export function parseAge(value: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(value.trim())
  if (match === null) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`--older-than\` to be a number and a unit (s, m, h, d or w), like 7d or 12h, got ${describeValue(value)}`)
  }
  return Number(match[1]) * UNITS[match[2]!]!
}

/** When a run was last active: its journal's last write, else its directory's (0 when it has none). */
function lastActive(checkpointDir: string, runId: string): number {
  for (const file of [journalFile(checkpointDir, runId), join(checkpointDir, runId)]) {
    try {
      return statSync(file).mtimeMs
    } catch {
      // Next.
    }
  }
  return 0
}
