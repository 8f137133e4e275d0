import { availableParallelism, hostname } from 'node:os'
import { loadConfig } from '../runtime/core/config.ts'
import { reportListenerError } from '../runtime/core/events.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import { createLocalBackend } from '../runtime/execution/local-backend.ts'
import { systemClock } from '../runtime/core/clock.ts'
import { checkReachable, parseRedisUrl } from '../runtime/execution/redis/connection.ts'
import { startRemoteWorker } from '../runtime/execution/redis/redis-worker.ts'
import { EXIT } from './exit-codes.ts'

export interface WorkerCommandOptions {
  readonly backend: string
  readonly concurrency?: number
  readonly name?: string
  readonly config?: string
}

/**
 * `troupe worker --backend URL`: runs attempts of any run on that backend until SIGINT or
 * SIGTERM; the first signal stops taking jobs and lets the ones held finish, a second one
 * aborts them (their jobs go back to the queue for another worker). Returns the exit code.
 */
export async function workerCommand(options: WorkerCommandOptions): Promise<number> {
  if (options.backend === 'local') {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      '`troupe worker --backend` needs a Redis URL (redis://HOST:PORT[/DB]); "local" runs in `troupe run` itself',
    )
  }
  const target = parseRedisUrl(options.backend)
  await checkReachable(target)
  const config = loadConfig({ file: options.config })
  const concurrency = options.concurrency ?? availableParallelism()
  const name = options.name ?? `${hostname()}-${process.pid}`
  const onError = (error: unknown) => reportListenerError(error)
  const { executor } = createLocalBackend(config, { threads: concurrency, clock: systemClock, onError })
  const worker = await startRemoteWorker({ target, name, concurrency, cwd: process.cwd(), executor, onError })
  process.stderr.write(`troupe worker ${JSON.stringify(name)}: taking attempts from ${target.url} (concurrency ${concurrency})\n`)
  return new Promise((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      const force = stopping
      stopping = true
      const what = force ? 'aborting the attempts held' : 'finishing the attempts held (again to abort them)'
      process.stderr.write(`troupe worker: ${signal}, ${what}\n`)
      void worker.close(force).then(() => resolve(EXIT.ok))
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}
