import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Queue, QueueEvents, type ConnectionOptions } from 'bullmq'
import { Redis } from 'ioredis'
import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor, SpawnAnswer } from '../executor.ts'
import { AttemptServices } from './attempt-services.ts'
import { redisOptions, type RedisTarget } from './connection.ts'
import { isSignedCall, loadSecret, resultProblem, signJob } from './job-signature.ts'
import {
  ABORT_CHANNEL,
  EVENTS_PATTERN,
  PREFIX,
  QUEUE,
  answersChannel,
  claimKey,
  completionKey,
  jobIdOf,
  parseCompletion,
  workerNameOf,
  type AttemptEvent,
  type AttemptJob,
  type AttemptJobResult,
  type CallAnswer,
} from './protocol.ts'

/** How often attempts still waiting are looked up in Redis (see `#reconcile`). */
const RECONCILE_MS = 2_000

/**
 * How long the backend may be unreachable before the attempts in flight fail (retryable). Long
 * enough for a restart: an attempt that completed during an outage is reported completed once
 * Redis is back (its worker's completion record), not failed and run again.
 */
const OUTAGE_MS = 5 * 60_000
/** After Redis comes back, how long workers get to write their claims again before a lost job is re-enqueued. */
const REASSERT_MS = 3_000

interface Clients {
  readonly queue: Queue
  readonly events: QueueEvents
  readonly subscriber: Redis
  readonly publisher: Redis
  readonly ready: Promise<void>
  readonly reconcile: NodeJS.Timeout
}

interface Pending {
  readonly request: AttemptRequest
  /** When it was enqueued (epoch ms): the reconciler leaves young attempts alone. */
  readonly since: number
  readonly listener: AttemptListener
  readonly resolve: (result: AttemptResult & { worker?: string }) => void
  aborted: boolean
}

/**
 * The coordinator's side of the Redis backend: each attempt becomes a BullMQ job that any
 * `troupe worker` on the backend takes (atomically: one worker per job). The run keeps the
 * DAG and releases dependents itself (BullMQ flows are trees); BullMQ brings atomic
 * claiming, priorities and stalled-job recovery (a worker killed mid-task loses its lock,
 * and the job runs again on another worker). Progress, logs and usage come back over
 * pub/sub; the result comes back as the job's return value.
 */
export class RedisExecutor implements Executor {
  readonly name: string
  readonly #target: RedisTarget
  readonly #pending = new Map<string, Pending>()
  readonly #startedAt = Date.now()
  readonly #cwd: string
  /** Signs every job; undefined: jobs go unsigned (only `troupe worker --insecure` runs them). */
  readonly #secret: string | undefined
  /** When the backend last became reachable again (epoch ms). */
  #reconnectedAt = 0
  /** Connected on the first attempt, so a runtime that never runs (or cannot reach Redis) holds no connection. */
  #clients: Clients | undefined
  #reconciling = false
  /** The `ctx` services (scratchpad, messages, limits, claims) of attempts on workers, and what they hold. */
  readonly #services: AttemptServices

  constructor(target: RedisTarget, cwd = process.cwd(), secret = loadSecret()) {
    this.name = target.url
    this.#target = target
    this.#cwd = cwd
    this.#secret = secret
    this.#services = new AttemptServices(secret, (jobId, reply) => {
      void this.#clients?.publisher.publish(answersChannel(jobId), JSON.stringify(reply)).catch(() => undefined)
    })
  }

  #connect(): Clients {
    if (this.#clients !== undefined) return this.#clients
    const options = redisOptions(this.#target)
    const connection = options as ConnectionOptions
    const queue = new Queue(QUEUE, { connection, prefix: PREFIX })
    const events = new QueueEvents(QUEUE, { connection, prefix: PREFIX })
    const subscriber = new Redis(options)
    const publisher = new Redis(options)
    for (const client of [subscriber, publisher]) client.on('error', () => undefined)
    // Redis went away: what is in flight fails, retryable, if it stays away longer than
    // OUTAGE_MS — a run never hangs silently on a dead backend. When it is back, `#reconcile`
    // re-enqueues jobs a restarted Redis (without persistence) lost (idempotent job ids).
    let connected = false
    let outage: NodeJS.Timeout | undefined
    publisher.on('ready', () => {
      clearTimeout(outage)
      outage = undefined
      if (connected) this.#reconnectedAt = Date.now()
      connected = true
    })
    publisher.on('close', () => {
      if (!connected || outage !== undefined || this.#pending.size === 0) return
      outage = setTimeout(() => this.#failAll(`Backend ${this.name} has been unreachable for ${OUTAGE_MS / 1000} s`), OUTAGE_MS)
      outage.unref()
    })
    queue.on('error', () => undefined)
    events.on('error', () => undefined)
    events.on('completed', ({ jobId, returnvalue }) => this.#settleFromWorker(jobId, returnvalue as unknown as AttemptJobResult))
    events.on('failed', ({ jobId, failedReason }) =>
      this.#settle(jobId, { worker: 'unknown', result: { ok: false, error: { code: 'ERR_WORKER_EXIT', message: `The worker running this attempt failed: ${failedReason}` } } }),
    )
    subscriber.on('pmessage', (_pattern, channel, message) => this.#onEvent(channel, message))
    const ready = Promise.all([events.waitUntilReady(), subscriber.psubscribe(EVENTS_PATTERN)]).then(() => undefined)
    // QueueEvents reads the event stream from "now" once its first blocking read is issued: a
    // job that finishes before that read (or while the connection was down) raises no event
    // here. Every few seconds the attempts still waiting are looked up, so none waits forever.
    const reconcile = setInterval(() => void this.#reconcile(), RECONCILE_MS)
    reconcile.unref()
    return (this.#clients = { queue, events, subscriber, publisher, ready, reconcile })
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const jobId = jobIdOf(request)
    let pending!: Pending
    const result = new Promise<AttemptResult>((resolve) => {
      pending = { request, since: Date.now(), listener, resolve, aborted: false }
      this.#pending.set(jobId, pending)
    })
    void this.#enqueue(jobId, request).catch((error: Error) =>
      this.#settle(jobId, { worker: 'none', result: { ok: false, error: { code: 'ERR_BACKEND_UNAVAILABLE', message: `Cannot enqueue task "${request.taskId}" on ${this.name}: ${error.message}` } } }),
    )
    return {
      result,
      abort: () => {
        if (pending.aborted) return
        pending.aborted = true
        void this.#abort(jobId, request)
      },
    }
  }

  async close(force = false): Promise<void> {
    const clients = this.#clients
    if (clients === undefined) return
    clearInterval(clients.reconcile)
    if (force) for (const jobId of this.#pending.keys()) await clients.publisher.publish(ABORT_CHANNEL, jobId).catch(() => undefined)
    // BullMQ's close waits for a connection that may never come back: bound it.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.allSettled([clients.events.close(), clients.queue.close()]), new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))])
    clearTimeout(timer)
    for (const client of [clients.subscriber, clients.publisher]) client.disconnect()
    void clients.queue.disconnect().catch(() => undefined)
    void clients.events.disconnect().catch(() => undefined)
  }

  async #enqueue(jobId: string, request: AttemptRequest): Promise<void> {
    const { queue, ready, publisher } = this.#connect()
    await ready
    // A worker recorded this attempt's result (an earlier coordinator of this run, or a job Redis lost after it ran): adopt it.
    const recorded = parseCompletion(await publisher.get(completionKey(jobId)))
    if (recorded !== undefined) {
      this.#settleFromWorker(jobId, recorded)
      return
    }
    const job = await queue.add(request.taskId, this.#jobOf(request), { jobId, removeOnComplete: { age: 3_600 }, removeOnFail: { age: 3_600 }, attempts: 1 })
    // An existing job with this id was enqueued by an earlier coordinator of this run (killed,
    // then resumed): adopt it while it waits or runs, and adopt its output if it completed
    // well; a failed one runs again (the journal did not record it, so this is a new try).
    // (`add` with an existing id returns a local object, not the stored job: read it back.)
    const stored = job.timestamp < this.#startedAt ? job : await queue.getJob(jobId)
    if (stored !== undefined && stored.timestamp < this.#startedAt) {
      const state = await stored.getState()
      const value = stored.returnvalue as AttemptJobResult | undefined
      if (state === 'completed' && value?.result.ok === true) this.#settleFromWorker(jobId, value)
      else if (state === 'completed' || state === 'failed') {
        await stored.remove()
        await queue.add(request.taskId, this.#jobOf(request), { jobId, removeOnComplete: { age: 3_600 }, removeOnFail: { age: 3_600 }, attempts: 1 })
      }
    }
  }

  #jobOf(request: AttemptRequest): AttemptJob {
    const agent = request.agent
    const job: AttemptJob = agent.kind !== 'module' ? { request } : { request, module: moduleCheck(agent.moduleUrl, this.#cwd) }
    return this.#secret === undefined ? job : signJob(this.#secret, jobIdOf(request), job)
  }

  async #abort(jobId: string, request: AttemptRequest): Promise<void> {
    const { queue, publisher } = this.#connect()
    const job = await queue.getJob(jobId).catch(() => undefined)
    const state = await job?.getState().catch(() => undefined)
    if (job !== undefined && (state === 'waiting' || state === 'prioritized' || state === 'delayed')) {
      const removed = await job.remove().then(
        () => true,
        () => false,
      )
      if (removed) {
        this.#settle(jobId, { worker: 'none', result: { ok: false, error: { code: 'ERR_CANCELLED', message: `Attempt ${request.attempt} of task "${request.taskId}" was aborted before a worker took it` } } })
        return
      }
    }
    await publisher.publish(ABORT_CHANNEL, jobId).catch(() => undefined)
  }

  /** Settles attempts whose job finished without an event reaching us; re-enqueues jobs Redis lost. */
  async #reconcile(): Promise<void> {
    const clients = this.#clients
    if (clients === undefined || this.#reconciling) return
    this.#reconciling = true
    try {
      // Units of named limits held by attempts of workers that are gone go back (a worker killed with SIGKILL).
      if (this.#services.holding) {
        this.#services.sweep(new Set((await clients.queue.getWorkers()).map((client) => workerNameOf(client))))
      }
      for (const [jobId, pending] of [...this.#pending]) {
        if (pending.aborted || Date.now() - pending.since < RECONCILE_MS) continue
        const job = await clients.queue.getJob(jobId)
        if (job === undefined) {
          // Lost by a Redis restart: re-enqueued unless its worker recorded it or still holds it.
          const recorded = parseCompletion(await clients.publisher.get(completionKey(jobId)))
          if (recorded !== undefined) this.#settleFromWorker(jobId, recorded)
          else if (Date.now() - this.#reconnectedAt >= REASSERT_MS && !(await this.#heldByLiveWorker(clients, jobId))) {
            await this.#enqueue(jobId, pending.request)
          }
          continue
        }
        const state = await job.getState()
        if (state === 'completed') this.#settleFromWorker(jobId, job.returnvalue as AttemptJobResult)
        else if (state === 'failed') {
          // One round trip: the result its worker recorded, if it recorded one (null: none).
          const text = await clients.publisher.get(completionKey(jobId))
          if (text !== null) this.#settleFromWorker(jobId, parseCompletion(text) ?? (job.returnvalue as AttemptJobResult))
          else this.#settle(jobId, { worker: 'unknown', result: { ok: false, error: { code: 'ERR_WORKER_EXIT', message: `The worker running this attempt failed: ${job.failedReason}` } } })
        }
      }
    } catch {
      // Redis unreachable: the outage timer decides; the next round tries again.
    } finally {
      this.#reconciling = false
    }
  }

  /** Whether a worker still connected claims the attempt (it runs it, or is about to record its result). */
  async #heldByLiveWorker(clients: Clients, jobId: string): Promise<boolean> {
    const holder = await clients.publisher.get(claimKey(jobId))
    if (holder === null) return false
    const workers = await clients.queue.getWorkers()
    return workers.some((client) => workerNameOf(client) === holder)
  }

  #failAll(message: string): void {
    for (const jobId of [...this.#pending.keys()]) {
      this.#settle(jobId, { worker: 'none', result: { ok: false, error: { code: 'ERR_BACKEND_UNAVAILABLE', message } } })
    }
  }

  /** Settles with a result read from Redis: with a secret, only one a worker holding it signed. */
  #settleFromWorker(jobId: string, value: AttemptJobResult): void {
    const problem = this.#secret === undefined ? undefined : resultProblem(this.#secret, jobId, value)
    if (problem === undefined) return this.#settle(jobId, value)
    const message = `The result of job ${jobId} is refused: ${problem} (only a worker holding the shared secret can report one)`
    this.#settle(jobId, { worker: 'unknown', result: { ok: false, error: { code: 'ERR_JOB_REFUSED', message, retryable: false } } })
  }

  #settle(jobId: string, value: AttemptJobResult): void {
    const pending = this.#pending.get(jobId)
    if (pending === undefined) return
    this.#pending.delete(jobId)
    this.#services.ended(jobId)
    pending.resolve({ ...value.result, worker: value.worker })
  }

  #onEvent(channel: string, message: string): void {
    const jobId = channel.slice(`${PREFIX}:events:`.length)
    const pending = this.#pending.get(jobId)
    if (pending === undefined) return
    let event: AttemptEvent
    try {
      event = JSON.parse(message) as AttemptEvent
    } catch {
      return
    }
    if (event.type === 'completed') this.#settleFromWorker(jobId, event.value)
    else if (event.type === 'progress') pending.listener.onProgress(event.fraction, event.message)
    else if (event.type === 'log') pending.listener.onLog(event.message)
    else if (event.type === 'usage') pending.listener.onUsage(event.report)
    else if (event.type === 'rate-limited') pending.listener.onRateLimited?.(event.until, event.message)
    else if (event.type === 'started') this.#services.started(jobId, event.session, event.worker)
    else if (event.type === 'service') this.#services.handle(jobId, pending.request.taskId, pending.listener, event, message.length)
    else if (event.type === 'spawn') {
      // Only a worker holding the secret may add tasks to the run (the coordinator signs the jobs they become).
      const forged = this.#secret !== undefined && !isSignedCall(this.#secret, jobId, event, event.signature)
      const message = 'The call is not signed by a worker holding the shared secret'
      const refusal: SpawnAnswer = { ok: false, error: { code: 'ERR_JOB_REFUSED', message } }
      // The run adds the tasks (and, with `wait`, answers once they have ended): the answer goes back to the worker.
      void (forged ? Promise.resolve(refusal) : pending.listener.onSpawn(event.tasks, { wait: event.wait })).then((answer) => {
        const reply: CallAnswer = { call: event.call, answer }
        return this.#clients?.publisher.publish(answersChannel(jobId), JSON.stringify(reply))
      }).catch(() => undefined)
    }
  }
}

/** A module agent's path relative to the coordinator's directory and its content hash, for the worker to check its copy. */
function moduleCheck(moduleUrl: string, cwd: string): NonNullable<AttemptJob['module']> {
  const file = fileURLToPath(moduleUrl)
  return { relativePath: relative(cwd, file), sha256: createHash('sha256').update(readFileSync(file)).digest('hex') }
}

