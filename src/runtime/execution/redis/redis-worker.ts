import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker, type ConnectionOptions, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor, SpawnAnswer } from '../executor.ts'
import { redisOptions, type RedisTarget } from './connection.ts'
import { ABORT_CHANNEL, PREFIX, QUEUE, answersChannel, eventsChannel, type AttemptEvent, type AttemptJob, type AttemptJobResult, type CallAnswer } from './protocol.ts'

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
  /** A job lock not renewed for this long (the worker died) hands the job to another worker. @default 4000 */
  readonly lockDurationMs?: number
  readonly onError?: (error: Error) => void
}

/** A running `troupe worker`. */
export interface RemoteWorker {
  /** Stops taking jobs; waits for the attempts it holds (or, with `force`, aborts them and hands them back). */
  close(force?: boolean): Promise<void>
}

/**
 * The worker side of the Redis backend: takes attempts of any run from the shared BullMQ
 * queue and runs them with its own local executor, reporting progress, logs and usage back
 * over pub/sub. A module agent whose content differs from the coordinator's is refused with
 * ERR_AGENT_MISMATCH, never run.
 */
export async function startRemoteWorker(options: RemoteWorkerOptions): Promise<RemoteWorker> {
  const connection = redisOptions(options.target)
  const publisher = new Redis(connection)
  const subscriber = new Redis(connection)
  const onError = options.onError ?? (() => undefined)
  publisher.on('error', onError)
  subscriber.on('error', onError)
  const running = new Map<string, AttemptHandle>()
  const calls = new RemoteCalls()
  subscriber.on('message', (channel, message) => {
    if (channel === ABORT_CHANNEL) running.get(message)?.abort()
    else calls.answered(channel, message)
  })
  await subscriber.subscribe(ABORT_CHANNEL)
  const publish = (jobId: string, event: AttemptEvent) => void publisher.publish(eventsChannel(jobId), JSON.stringify(event)).catch(onError)
  /** BullMQ workers taking one job each in place of attempts that wait for tasks they spawned. */
  const stand: Worker<AttemptJob, AttemptJobResult>[] = []
  const spawn = async (jobId: string, tasks: unknown, wait: boolean): Promise<SpawnAnswer> => {
    // A waiting attempt holds its slot of this worker: another takes jobs in its place
    // meanwhile, so that the tasks it waits for can run here too (a worker whose every slot
    // waits would deadlock). BullMQ's `concurrency` cannot grow a running worker: its loop
    // waits for a job to finish before it reads the new value.
    const extra = wait ? newWorker(1) : undefined
    if (extra !== undefined) stand.push(extra)
    try {
      return await calls.call(jobId, (call) => publish(jobId, { type: 'spawn', call, tasks, wait }))
    } finally {
      // Takes no new job from now on; finishes the one it holds (a forced close stops it sooner).
      if (extra !== undefined) void extra.close().catch(onError).finally(() => stand.splice(stand.indexOf(extra), 1))
    }
  }

  const processor = async (job: Job<AttemptJob, AttemptJobResult>): Promise<AttemptJobResult> => {
    const jobId = job.id!
    const local = localRequest(job.data, options.cwd)
    if (!local.ok) return { worker: options.name, result: local }
    publish(jobId, { type: 'started', worker: options.name })
    await subscriber.subscribe(answersChannel(jobId))
    const handle = options.executor.start(local.request, listener(jobId, publish, (tasks, wait) => spawn(jobId, tasks, wait)))
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
      subscriber.disconnect()
      publisher.disconnect()
    },
  }
}

function listener(jobId: string, publish: (jobId: string, event: AttemptEvent) => void, spawn: (tasks: unknown, wait: boolean) => Promise<SpawnAnswer>): AttemptListener {
  return {
    onProgress: (fraction, message) => publish(jobId, { type: 'progress', fraction, message }),
    onLog: (message) => publish(jobId, { type: 'log', message }),
    onUsage: (report) => publish(jobId, { type: 'usage', report }),
    onRateLimited: (until, message) => publish(jobId, { type: 'rate-limited', until, message }),
    onAcquire: (name) => Promise.reject(new Error(`ctx.acquire(${JSON.stringify(name)}) is not available on a remote worker; declare the limit in the task's \`uses\` instead (the coordinator holds it)`)),
    onClaim: () => ({ granted: false, holder: '(ctx.claim is not available on a remote worker; declare the claim in the plan)' }),
    onRelease: () => undefined,
    onSpawn: (tasks, options) => spawn(tasks, options.wait),
  }
}

/**
 * Calls of this worker's attempts the coordinator answers over pub/sub (`ctx.spawn`): each
 * call has a number; the answer for it arrives on the attempt's answers channel. Calls of an
 * attempt that ends unanswered are refused.
 */
class RemoteCalls {
  readonly #waiting = new Map<string, Map<number, (answer: SpawnAnswer) => void>>()
  #next = 0

  call(jobId: string, send: (call: number) => void): Promise<SpawnAnswer> {
    const call = ++this.#next
    return new Promise((resolve) => {
      let calls = this.#waiting.get(jobId)
      if (calls === undefined) this.#waiting.set(jobId, (calls = new Map()))
      calls.set(call, resolve)
      send(call)
    })
  }

  answered(channel: string, message: string): void {
    const calls = this.#waiting.get(channel.slice(`${PREFIX}:answers:`.length))
    let reply: CallAnswer
    try {
      reply = JSON.parse(message) as CallAnswer
    } catch {
      return
    }
    const resolve = calls?.get(reply.call)
    if (resolve === undefined) return
    calls!.delete(reply.call)
    resolve(reply.answer)
  }

  forget(jobId: string): void {
    const calls = this.#waiting.get(jobId)
    this.#waiting.delete(jobId)
    for (const resolve of calls?.values() ?? []) resolve({ ok: false, error: { code: 'ERR_CANCELLED', message: 'The attempt ended before the coordinator answered' } })
  }
}

/** The request with its module agent resolved in this worker's checkout, or ERR_AGENT_MISMATCH. */
function localRequest(job: AttemptJob, cwd: string): { ok: true; request: AttemptRequest } | (AttemptResult & { ok: false }) {
  const request = job.request
  if (request.agent.kind !== 'module' || job.module === undefined) return { ok: true, request }
  const candidates = [fileURLToPath(request.agent.moduleUrl), resolve(cwd, job.module.relativePath)]
  let seen: string | undefined
  for (const file of candidates) {
    if (!existsSync(file)) continue
    seen = file
    if (createHash('sha256').update(readFileSync(file)).digest('hex') === job.module.sha256) {
      return { ok: true, request: { ...request, agent: { ...request.agent, moduleUrl: pathToFileURL(file).href } } }
    }
  }
  const message =
    seen === undefined
      ? `Agent "${request.agent.name}" module ${job.module.relativePath} is not in this worker's checkout (${cwd}); run the worker in a checkout of the same project`
      : `Agent "${request.agent.name}" module ${seen} differs from the coordinator's (content hash); refusing to run it — update this worker's checkout`
  return { ok: false, error: { code: 'ERR_AGENT_MISMATCH', message, retryable: false } }
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
