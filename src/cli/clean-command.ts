import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { stopLeftovers } from '../runtime/journal/process-ledger.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError, describeValue } from '../runtime/core/errors.ts'
import { git } from '../runtime/workspace/git.ts'
import { cleanWorktrees } from '../runtime/workspace/clean.ts'
import { isRunLive } from '../runtime/workspace/run-liveness.ts'
import { EXIT } from './exit-codes.ts'

export interface CleanCommandOptions {
  /** Only this run's leftovers. */
  readonly runId?: string
  readonly config?: string
  /** The repository to clean. @default the current directory */
  readonly cwd?: string
}

/**
 * `troupe clean [--run-id ID]`: removes the task worktrees and task branches that runs no
 * longer running left in the repository of the current directory (a killed `troupe run`
 * that will not be resumed), after killing the agent processes such runs left running
 * (their process ledgers, see process-ledger.ts). Integration branches stay: they hold merged
 * work. Returns the exit code.
 */
export async function cleanCommand(options: CleanCommandOptions): Promise<number> {
  const cwd = resolve(options.cwd ?? process.cwd())
  const only = options.runId
  if (only !== undefined && (!/^[\w.-]{1,128}$/.test(only) || only === '.' || only === '..')) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`--run-id\` to be 1-128 letters, digits, '.', '_' or '-', got ${describeValue(only)}`)
  }
  if ((await git(cwd, ['rev-parse', '--show-toplevel'])).exitCode !== 0) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `troupe clean removes troupe's worktrees from a git repository, but ${cwd} is not inside one; run it from the repository the runs used`)
  }
  const checkpointDir = resolve(cwd, loadConfig({ file: options.config }).checkpoint.dir)
  if (only !== undefined && isRunLive(checkpointDir, only)) {
    throw new TroupeError('ERR_RUN_LOCKED', `Run "${only}" is still running (its process holds ${resolve(checkpointDir, only)}); stop it first, or let it finish — it removes its own worktrees`)
  }
  let killed = 0
  for (const runId of only !== undefined ? [only] : runDirs(checkpointDir)) {
    if (!isRunLive(checkpointDir, runId)) killed += await stopLeftovers(join(checkpointDir, runId))
  }
  if (killed > 0) process.stderr.write(`troupe: killed ${killed} processes left running by killed runs\n`)
  const report = await cleanWorktrees(cwd, (runId) => (only !== undefined && runId !== only) || isRunLive(checkpointDir, runId))
  for (const path of report.worktrees) process.stderr.write(`troupe: removed worktree ${path}\n`)
  for (const branch of report.branches) process.stderr.write(`troupe: deleted branch ${branch}\n`)
  process.stderr.write(`troupe: clean: ${report.worktrees.length} worktrees and ${report.branches.length} branches removed${only === undefined ? '' : ` (run ${only})`}\n`)
  return EXIT.ok
}

function runDirs(checkpointDir: string): string[] {
  try {
    return readdirSync(checkpointDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name)
  } catch {
    return []
  }
}
