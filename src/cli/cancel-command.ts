import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import { liveHolder } from '../runtime/journal/lock.ts'
import { runDir } from '../runtime/journal/paths.ts'
import { EXIT } from './exit-codes.ts'
import { checkRunId } from './run-id.ts'

export interface CancelCommandOptions {
  readonly config?: string
  /** How long to wait for the run's process to end. @default 30000 */
  readonly waitMs?: number
}

/**
 * `troupe cancel <runId>`: asks the process running a run to cancel it, with SIGTERM to the
 * pid in the run's lock (`troupe run` cancels gracefully on the first SIGTERM: running
 * tasks are cancelled and the journal is flushed, so the run can be resumed), then waits
 * for the lock to be released. A run no live process holds is an error naming its state.
 */
export async function cancelCommand(runId: string, options: CancelCommandOptions = {}): Promise<number> {
  checkRunId(runId)
  const root = resolve(loadConfig({ file: options.config }).checkpoint.dir)
  const dir = runDir(root, runId)
  if (!existsSync(dir)) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `No run "${runId}" in ${root} (checkpoint.dir); \`troupe runs\` lists the runs`)
  }
  const holder = liveHolder(dir)
  if (holder === undefined) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Run "${runId}" is not running (no live process holds ${dir}/lock); nothing to cancel`)
  }
  if (holder.host !== hostname()) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Run "${runId}" runs on host ${holder.host} (pid ${holder.pid}); cancel it there`)
  }
  process.kill(holder.pid, 'SIGTERM')
  process.stderr.write(`troupe: asked run ${runId} (pid ${holder.pid}) to cancel\n`)
  const deadline = Date.now() + (options.waitMs ?? 30_000)
  while (Date.now() < deadline) {
    if (liveHolder(dir)?.token !== holder.token) {
      process.stderr.write(`troupe: run ${runId} cancelled; resume it with --run-id ${runId}\n`)
      return EXIT.ok
    }
    await sleep(100)
  }
  process.stderr.write(`troupe: run ${runId} (pid ${holder.pid}) is still stopping; \`troupe cancel ${runId}\` again forces it\n`)
  return EXIT.incomplete
}
