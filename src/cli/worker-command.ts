import { availableParallelism, hostname } from 'node:os'
import { loadConfig } from '../runtime/core/config.ts'
import { reportListenerError } from '../runtime/report/events.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import { createLocalBackend } from '../runtime/execution/local-backend.ts'
import { systemClock } from '../runtime/core/clock.ts'
import { checkReachable, parseRedisUrl } from '../runtime/execution/redis/connection.ts'
import { loadSecret } from '../runtime/execution/redis/job-signature.ts'
import type { AgentSpec } from '../runtime/plan/agent-spec.ts'
import { loadPlan } from '../runtime/plan/load-plan.ts'
import { startRemoteWorker } from '../runtime/execution/redis/redis-worker.ts'
import { EXIT } from './exit-codes.ts'

export interface WorkerCommandOptions {
  /** @default the REDIS_URL environment variable */
  readonly backend?: string
  /** The agents this worker runs: those of this plan (by name), and no others. */
  readonly plan?: string
  /** A file holding the shared secret jobs are signed with (else TROUPE_SECRET_FILE, TROUPE_SECRET). */
  readonly secretFile?: string
  /** Runs unsigned jobs: anyone who can write to Redis runs this worker's agents. */
  readonly insecure?: boolean
  readonly concurrency?: number
  readonly name?: string
  readonly config?: string
}

/**
 * `troupe worker --backend URL`: runs attempts of any run on that backend until SIGINT or
 * SIGTERM; the first signal stops taking jobs and lets the ones held finish, a second one
 * aborts them (their jobs go back to the queue for another worker). Only jobs signed with
 * the shared secret run, and only agents this worker defines itself (`--plan`, else module
 * agents of its checkout). Returns the exit code.
 */
export async function workerCommand(options: WorkerCommandOptions): Promise<number> {
  const backend = options.backend ?? process.env.REDIS_URL
  if (backend === undefined || backend === '' || backend === 'local') {
    const why = backend === 'local' ? '; "local" runs in `troupe run` itself' : ''
    const url = 'redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]'
    throw new TroupeError('ERR_ARGUMENT_INVALID', `\`troupe worker\` needs a Redis URL: --backend ${url} or REDIS_URL${why}`)
  }
  const target = parseRedisUrl(backend)
  const secret = loadSecret({ file: options.secretFile })
  if (secret === undefined && options.insecure !== true) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      '`troupe worker` needs the shared secret jobs are signed with: set TROUPE_SECRET (or TROUPE_SECRET_FILE, --secret-file) ' +
        "to the coordinator's; --insecure runs unsigned jobs",
    )
  }
  const agents = options.plan === undefined ? undefined : planAgents(options.plan)
  await checkReachable(target)
  const config = loadConfig({ file: options.config })
  const concurrency = options.concurrency ?? availableParallelism()
  const name = options.name ?? `${hostname()}-${process.pid}`
  const onError = (error: unknown) => reportListenerError(error)
  // The run tools (MCP) for CLI agents: their calls go to the coordinator like a module agent's ctx.
  const { executor } = createLocalBackend(config, { threads: concurrency, clock: systemClock, onError, tools: true })
  const worker = await startRemoteWorker({
    target,
    name,
    concurrency,
    cwd: process.cwd(),
    executor,
    secret: secret ?? null,
    ...(agents === undefined ? {} : { agents }),
    onError,
  })
  if (secret === undefined) {
    process.stderr.write("troupe worker: --insecure: running unsigned jobs; anyone who can write to this Redis runs this worker's agents\n")
  }
  const runs = agents === undefined ? 'module agents of this checkout' : `the ${agents.size} agents of ${options.plan}`
  const taking = `taking attempts from ${target.url} (concurrency ${concurrency}; runs ${runs})`
  process.stderr.write(`troupe worker ${JSON.stringify(name)}: ${taking}\n`)
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

/** The agents a plan defines by name, module paths given inline included. */
function planAgents(file: string): ReadonlyMap<string, AgentSpec> {
  const plan = loadPlan(file)
  const agents = new Map<string, AgentSpec>(plan.linker?.agents ?? [])
  for (const task of plan.tasks) agents.set(task.agentSpec.name, task.agentSpec)
  return agents
}
