import { randomUUID } from 'node:crypto'
import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import type { AgentSpec } from '../../plan/agent-spec.ts'
import type { AttemptHandle, AttemptListener, AttemptResult, Executor, SpawnAnswer } from '../executor.ts'
import { AttemptCalls } from './attempt-calls.ts'
import { redisOptions, type RedisTarget } from './connection.ts'
import { signCall, signResult, signService, signatureProblem } from './job-signature.ts'
import { admitAgent } from './local-agents.ts'
import { remoteServices, type RemoteServices } from './remote-services.ts'
import {
  ABORT_CHANNEL,
  COMPLETION_TTL_S,
  PREFIX,
  QUEUE,
  answersChannel,
  claimKey,
  completionKey,
  eventsChannel,
  parseCompletion,
  workerNameOf,
  type AttemptEvent,
  type AttemptJob,
  type AttemptJobResult,
  type ServiceRequest,
} from './protocol.ts'

export interface RemoteWorkerOptions {
  readonly target: RedisTarget
  /** Shown in `RunResult.tasks[id].worker`. */
  readonly name: string
  /** Attempts run at once on this worker. */
  readonly concurrency: number
  /** The worker's checkout of the project: module agents resolve here. */
  readonly cwd: string
  /** Runs the attempts here (the same local executor `troupe run` uses). */
  readonly executor: Executor
  /** The secret jobs must be signed with; `null` runs unsigned jobs (`troupe worker --insecure`). */
  readonly secret: string | null
  /** The agents of this worker's plan by name (`troupe worker --plan`); without, module agents of the checkout only. */
  readonly agents?: ReadonlyMap<string, AgentSpec>
  /** A job lock not renewed for this long (the worker died) hands the job to another worker. @default 4000 */
  readonly lockDurationMs?: number
  /** How long a `ctx` service call waits for the coordinator to take it up (or confirm it again) before it fails. @default 30000 */
  readonly callTimeoutMs?: number
  readonly onError?: (error: Error) => void
}

/** A running `troupe worker`. */
export interface RemoteWorker {
  /** Stops taking jobs; waits for the attempts it holds (or, with `force`, aborts them and hands them back). */
  close(force?: boolean): Promise<void>
}

/** How long this worker keeps results in memory, to write them again into a Redis that restarted empty. */
const REMEMBER_MS = 10 * 60_000

/** How long a job this worker cannot run waits before it is offered again (to another worker, or to this one once it may run it). */
const PUT_BACK_MS = 250

/**
 * The worker side of the Redis backend: takes attempts of any run from the shared BullMQ
 * queue and runs them with its own local executor, reporting progress, logs and usage back
 * over pub/sub.
 *
 * Before anything runs: a job without a valid signature is refused (ERR_JOB_REFUSED); an
 * agent this worker does not define identically (local-agents.ts) puts the job back for
 * another worker, and fails with ERR_AGENT_MISMATCH (retryable) only once every worker
 * connected has refused it.
 *
 * Exactly once across Redis faults: an attempt is claimed (`claimKey`, holding this worker's
 * name) before it runs, and its result is recorded (`completionKey`, and in memory) before
 * BullMQ hears of it. A job delivered again — a stalled lock after Redis froze, a job the
 * coordinator re-enqueued after Redis lost its data — is answered from the record, waits for
 * the holder still connected, and runs again only when its holder is gone.
 */
export async function startRemoteWorker(options: RemoteWorkerOptions): Promise<RemoteWorker> {
  const connection = redisOptions(options.target)
  const publisher = new Redis(connection)
  const subscriber = new Redis(connection)
  const onError = options.onError ?? (() => undefined)
  publisher.on('error', onError)
  subscriber.on('error', onError)
  const running = new Map<string, AttemptHandle>()
  const calls = new AttemptCalls(options.callTimeoutMs)
  subscriber.on('message', (channel, message) => {
    if (channel === ABORT_CHANNEL) running.get(message)?.abort()
    else calls.answered(channel, message)
  })
  await subscriber.subscribe(ABORT_CHANNEL)
  const publish = (jobId: string, event: AttemptEvent) => void publisher.publish(eventsChannel(jobId), JSON.stringify(event)).catch(onError)
  /** BullMQ workers taking one job each in place of attempts that wait for tasks they spawned. */
  const stand: Worker<AttemptJob, AttemptJobResult>[] = []
  const spawn = (jobId: string, tasks: unknown, wait: boolean): Promise<SpawnAnswer> => {
    const send = () =>
      calls.spawn(jobId, (call) => {
        const signature = options.secret === null ? undefined : signCall(options.secret, jobId, { call, tasks, wait })
        publish(jobId, { type: 'spawn', call, tasks, wait, ...(signature === undefined ? {} : { signature }) })
      })
    return wait ? standingIn(send) : send()
  }
  const standingIn = async <T>(waiting: () => Promise<T>): Promise<T> => {
    // A waiting attempt holds its slot of this worker: another takes jobs in its place
    // meanwhile, so that the tasks it waits for can run here too (a worker whose every slot
    // waits would deadlock). BullMQ's `concurrency` cannot grow a running worker: its loop
    // waits for a job to finish before it reads the new value.
    const extra = newWorker(1)
    stand.push(extra)
    try {
      return await waiting()
    } finally {
      // Takes no new job from now on; finishes the one it holds (a forced close stops it sooner).
      void extra.close().catch(onError).finally(() => stand.splice(stand.indexOf(extra), 1))
    }
  }

  /** Results of attempts this worker ran, by job id, oldest first (kept REMEMBER_MS). */
  const completed = new Map<string, { readonly value: AttemptJobResult; readonly at: number }>()
  const inFlight = new Map<string, Promise<AttemptJobResult>>()
  const queue = new Queue(QUEUE, { connection: connection as ConnectionOptions, prefix: PREFIX })
  queue.on('error', onError)
  const liveWorkers = async (): Promise<Set<string>> =>
    new Set((await queue.getWorkers()).map((client) => workerNameOf(client)))
  const record = async (jobId: string, value: AttemptJobResult): Promise<void> => {
    completed.set(jobId, { value, at: Date.now() })
    // Oldest first (insertion order): drop what Redis holds long enough by now.
    for (const [id, entry] of completed) {
      if (Date.now() - entry.at <= REMEMBER_MS) break
      completed.delete(id)
    }
    // Waits for Redis (commands queue while it is away): the record is written before BullMQ can re-deliver the job.
    await publisher.set(completionKey(jobId), JSON.stringify(value), 'EX', COMPLETION_TTL_S)
    publish(jobId, { type: 'completed', value })
  }
  // Redis restarted empty: claims and records of attempts held here are written again, so a
  // job the coordinator re-enqueues is not run a second time by another worker.
  publisher.on('ready', () => {
    for (const jobId of inFlight.keys()) void publisher.set(claimKey(jobId), options.name, 'EX', COMPLETION_TTL_S, 'NX').catch(onError)
    for (const [jobId, { value, at }] of completed) {
      if (Date.now() - at > REMEMBER_MS) completed.delete(jobId)
      else void publisher.set(completionKey(jobId), JSON.stringify(value), 'EX', COMPLETION_TTL_S, 'NX').catch(onError)
    }
  })

  /** Signs a result with the secret, so the coordinator can tell it from one written into Redis by someone else. */
  const seal = (jobId: string, value: AttemptJobResult): AttemptJobResult =>
    options.secret === null ? value : signResult(options.secret, jobId, value)

  const putBack = async (job: Job<AttemptJob, AttemptJobResult>, token: string | undefined, data: AttemptJob): Promise<never> => {
    if (data !== job.data) await job.updateData(data)
    await job.moveToDelayed(Date.now() + PUT_BACK_MS, token)
    throw new DelayedError()
  }

  const processor = async (job: Job<AttemptJob, AttemptJobResult>, token?: string): Promise<AttemptJobResult> => {
    const jobId = job.id!
    const refuse = (code: 'ERR_JOB_REFUSED' | 'ERR_AGENT_MISMATCH', message: string, retryable: boolean): AttemptJobResult =>
      seal(jobId, { worker: options.name, result: { ok: false, error: { code, message, retryable } } })
    if (options.secret !== null) {
      const problem = signatureProblem(options.secret, jobId, job.data)
      if (problem !== undefined) {
        const message = `Worker ${JSON.stringify(options.name)} refused job ${jobId}: ${problem}; nothing ran ` +
          '(coordinator and workers need the same TROUPE_SECRET)'
        return refuse('ERR_JOB_REFUSED', message, false)
      }
    }
    const admission = admitAgent(job.data, options.cwd, options.agents)
    if (!admission.ok) {
      const refusedBy = [...new Set([...(job.data.refusedBy ?? []), options.name])]
      const others = [...(await liveWorkers())].filter((name) => !refusedBy.includes(name))
      if (others.length > 0) return putBack(job, token, { ...job.data, refusedBy })
      return refuse('ERR_AGENT_MISMATCH', `${admission.message} (no worker connected can run it: ${refusedBy.join(', ')})`, true)
    }
    const local = completed.get(jobId)?.value ?? parseCompletion(await publisher.get(completionKey(jobId)))
    if (local !== undefined) return local
    const running = inFlight.get(jobId)
    if (running !== undefined) return running
    const holder = await publisher.set(claimKey(jobId), options.name, 'EX', COMPLETION_TTL_S, 'NX', 'GET')
    if (holder !== null && holder !== options.name && (await liveWorkers()).has(holder)) return putBack(job, token, job.data)
    if (holder !== null) await publisher.set(claimKey(jobId), options.name, 'EX', COMPLETION_TTL_S)
    const attempt = run(jobId, admission.request).then((value) => seal(jobId, value))
    inFlight.set(jobId, attempt)
    try {
      const value = await attempt
      await record(jobId, value)
      return value
    } finally {
      inFlight.delete(jobId)
    }
  }

  /** The attempt's `ctx` services, each call signed for this run of it (`session`) and answered by the coordinator. */
  const services = (jobId: string, session: string): RemoteServices => {
    const remote = remoteServices((what, request: ServiceRequest) =>
      calls.service(jobId, what, (call) => {
        const signature = options.secret === null ? undefined : signService(options.secret, jobId, { call, session, request })
        publish(jobId, { type: 'service', call, session, request, ...(signature === undefined ? {} : { signature }) })
      }),
    )
    return { ...remote, onWaitTasks: (request) => standingIn(() => remote.onWaitTasks(request)) }
  }

  const run = async (jobId: string, request: AttemptJob['request']): Promise<AttemptJobResult> => {
    const session = randomUUID()
    publish(jobId, { type: 'started', worker: options.name, session })
    await subscriber.subscribe(answersChannel(jobId))
    const ctx = listener(jobId, publish, (tasks, wait) => spawn(jobId, tasks, wait), services(jobId, session))
    const handle = options.executor.start(request, ctx)
    running.set(jobId, handle)
    try {
      return { worker: options.name, result: jsonSafe(await handle.result) }
    } finally {
      running.delete(jobId)
      calls.forget(jobId)
      void subscriber.unsubscribe(answersChannel(jobId)).catch(onError)
    }
  }
  const lockDuration = options.lockDurationMs ?? 4_000
  const newWorker = (concurrency: number) => {
    const taker = new Worker<AttemptJob, AttemptJobResult>(QUEUE, processor, {
      connection: connection as ConnectionOptions,
      prefix: PREFIX,
      concurrency,
      lockDuration,
      stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
      maxStalledCount: 3,
      name: options.name,
    })
    taker.on('error', onError)
    return taker
  }
  const worker = newWorker(options.concurrency)
  await worker.waitUntilReady()

  return {
    async close(force = false) {
      if (force) for (const handle of running.values()) handle.abort()
      await Promise.all([worker, ...stand].map((taker) => taker.close(force)))
      await options.executor.close(force)
      await queue.close().catch(onError)
      subscriber.disconnect()
      publisher.disconnect()
    },
  }
}

function listener(
  jobId: string,
  publish: (jobId: string, event: AttemptEvent) => void,
  spawn: (tasks: unknown, wait: boolean) => Promise<SpawnAnswer>,
  services: RemoteServices,
): AttemptListener {
  return {
    onProgress: (fraction, message) => publish(jobId, { type: 'progress', fraction, message }),
    onLog: (message) => publish(jobId, { type: 'log', message }),
    onUsage: (report) => publish(jobId, { type: 'usage', report }),
    onRateLimited: (until, message) => publish(jobId, { type: 'rate-limited', until, message }),
    ...services,
    onSpawn: (tasks, options) => spawn(tasks, options.wait),
  }
}

/** BullMQ stores return values as JSON: an output JSON cannot carry unchanged fails clearly instead of arriving changed. */
function jsonSafe(result: AttemptResult): AttemptResult {
  if (!result.ok || isPlainJson(result.output)) return result
  return { ok: false, error: { code: 'ERR_OUTPUT_NOT_CLONEABLE', message: 'The agent output cannot travel through the Redis backend as JSON (BigInt, Map, Set, Date, NaN, cycles…); return plain JSON data', retryable: false } }
}

function isPlainJson(root: unknown): boolean {
  const stack: unknown[] = [root]
  const seen = new Set<object>()
  while (stack.length > 0) {
    const value = stack.pop()
    if (value === null || typeof value === 'string' || typeof value === 'boolean' || value === undefined) continue
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return false
      continue
    }
    if (typeof value !== 'object') return false
    if (seen.has(value)) return false
    seen.add(value)
    if (Array.isArray(value)) stack.push(...value)
    else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) stack.push(...Object.values(value))
    else return false
  }
  return true
}
