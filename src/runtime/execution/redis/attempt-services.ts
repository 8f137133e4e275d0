import { MAX_PAGE_MESSAGES } from '../../coordination/mailbox.ts'
import { MAX_WAIT_IDS, MAX_WAIT_SECONDS } from '../../coordination/run-tools.ts'
import { MAX_PAGE_NOTES } from '../../coordination/scratchpad.ts'
import { isTroupeError, type ErrorCode } from '../../core/errors.ts'
import type { AttemptListener } from '../executor.ts'
import { isSignedService } from './job-signature.ts'
import {
  MAX_SERVICE_CALL_CHARS,
  MAX_SERVICE_TEXT_CHARS,
  SERVICE_ACCEPTED_EVERY_MS,
  type ServiceCall,
  type ServiceReply,
  type ServiceRequest,
} from './protocol.ts'

/** Sweeps in a row a worker must be missing from before what its attempts hold is given back (a blip is not a loss). */
const SWEEPS_TO_LOSE = 2

/** Longest limit name or claimed path a remote attempt may send, in characters. */
const MAX_NAME_CHARS = 4_096

/** What one run of an attempt on a worker holds through `ctx`. */
interface Session {
  /** The worker's id for this run of the attempt (its `started` event); undefined for a worker that sends none. */
  readonly id: string | undefined
  /** The worker running it (`troupe worker --name`), once its `started` event came. */
  readonly worker: string | undefined
  /** Consecutive sweeps that found its worker not connected. */
  missed: number
  /** Units of named limits held, by lease id: given back when the session ends, however it ends. */
  readonly leases: Map<number, () => void>
  /** Aborts `ctx.acquire` calls still waiting when the session ends. */
  readonly ended: AbortController
  /** The highest call number taken: a worker numbers its calls upwards, so a copied call is refused. */
  lastCall: number
}

/**
 * The coordinator's side of the `ctx` services of attempts on remote workers: takes each
 * call (scratchpad, messages, named limits, claims) to the run's listener of that attempt
 * and answers it on the attempt's answers channel, with the listener's value or error code.
 *
 * Trust: with a secret, only calls a worker holding it signed for this attempt's job id are
 * taken (ERR_JOB_REFUSED otherwise); each call number once; only calls of the attempt's
 * current run on a worker (a job taken again after its worker died starts a new session:
 * the units the earlier one held are given back then). Every field is checked and bounded
 * before the run sees it. The task a note, a message or a claim is for is always the
 * attempt's own.
 */
export class AttemptServices {
  readonly #secret: string | undefined
  readonly #reply: (jobId: string, reply: ServiceReply) => void
  readonly #sessions = new Map<string, Session>()
  #nextLease = 0

  constructor(secret: string | undefined, reply: (jobId: string, reply: ServiceReply) => void) {
    this.#secret = secret
    this.#reply = reply
  }

  /** A worker started (or started again) the attempt: a new session ends the earlier one, giving back what it held. */
  started(jobId: string, session: string | undefined, worker?: string): void {
    const current = this.#sessions.get(jobId)
    if (current !== undefined && current.id === session) return
    if (current !== undefined) end(current)
    this.#sessions.set(jobId, { id: session, worker, missed: 0, leases: new Map(), ended: new AbortController(), lastCall: 0 })
  }

  /** Whether some attempt holds units of named limits (a sweep has something to look at). */
  get holding(): boolean {
    for (const session of this.#sessions.values()) if (session.leases.size > 0) return true
    return false
  }

  /**
   * Gives back the units held by attempts whose worker is gone (killed with SIGKILL, its
   * machine lost): a worker `live` does not list on SWEEPS_TO_LOSE consecutive sweeps. The
   * attempt itself goes on as BullMQ decides (its job runs again elsewhere once its lock
   * expires); its later calls of `ctx.acquire` in that session are refused.
   */
  sweep(live: ReadonlySet<string>): void {
    for (const session of this.#sessions.values()) {
      if (session.worker === undefined || session.leases.size === 0 || live.has(session.worker)) {
        session.missed = 0
        continue
      }
      if (++session.missed >= SWEEPS_TO_LOSE) end(session)
    }
  }

  /** The attempt ended, however it ended: everything it held goes back. */
  ended(jobId: string): void {
    const session = this.#sessions.get(jobId)
    if (session === undefined) return
    this.#sessions.delete(jobId)
    end(session)
  }

  /**
   * Takes one call of the attempt `jobId` of task `taskId`, whose run's listener is `listener`;
   * `size`: the call's length on the wire.
   */
  handle(jobId: string, taskId: string, listener: AttemptListener, call: ServiceCall, size: number): void {
    if (typeof call.call !== 'number' || !Number.isSafeInteger(call.call)) return
    const refuse = (code: ErrorCode, message: string) => this.#reply(jobId, { call: call.call, error: { code, message } })
    if (size > MAX_SERVICE_CALL_CHARS) {
      return refuse('ERR_ARGUMENT_INVALID', `The call is ${size} characters long; at most ${MAX_SERVICE_CALL_CHARS} are taken`)
    }
    if (this.#secret !== undefined && !isSignedService(this.#secret, jobId, call)) {
      return refuse('ERR_JOB_REFUSED', 'The call is not signed by a worker holding the shared secret for this attempt')
    }
    // A coordinator that did not see the attempt start (resumed meanwhile) takes the session of its first signed call.
    if (!this.#sessions.has(jobId)) this.started(jobId, call.session)
    const session = this.#sessions.get(jobId)!
    if (session.id !== call.session) {
      return refuse('ERR_CANCELLED', 'The call comes from an earlier run of this attempt (its worker was replaced)')
    }
    if (call.call <= session.lastCall) return refuse('ERR_JOB_REFUSED', `Call ${call.call} of this attempt was already taken`)
    session.lastCall = call.call
    const problem = requestProblem(call.request)
    if (problem !== undefined) return refuse('ERR_ARGUMENT_INVALID', problem)
    void this.#serve(jobId, taskId, listener, session, call.call, call.request).then(
      (value) => this.#reply(jobId, { call: call.call, value: value ?? null }),
      (error: unknown) => refuse(codeOf(error), (error as Error)?.message ?? String(error)),
    )
  }

  async #serve(
    jobId: string,
    taskId: string,
    listener: AttemptListener,
    session: Session,
    call: number,
    request: ServiceRequest,
  ): Promise<unknown> {
    switch (request.op) {
      case 'scratchpad.page':
        return (await listener.scratchpad?.()?.page(request.since, Math.min(request.limit, MAX_PAGE_NOTES))) ?? { notes: [], total: 0 }
      case 'scratchpad.append': {
        const pad = listener.scratchpad?.()
        if (pad === undefined) throw new Error('ctx.scratchpad.append: this run has no scratchpad')
        return pad.append(taskId, request.text)
      }
      case 'messages.send': {
        const mailbox = listener.mailbox?.()
        if (mailbox === undefined) throw new Error('send_message: this run has no mailbox')
        return mailbox.send(taskId, request.to, request.text)
      }
      case 'messages.inbox': {
        const mailbox = listener.mailbox?.()
        if (mailbox === undefined) throw new Error('read_messages: this run has no mailbox')
        return mailbox.inbox(taskId, request.since, Math.min(request.limit ?? MAX_PAGE_MESSAGES, MAX_PAGE_MESSAGES))
      }
      case 'acquire': {
        const release = await this.#accepted(jobId, call, () => listener.onAcquire(request.name, session.ended.signal))
        if (session.ended.signal.aborted) {
          release()
          throw Object.assign(new Error(`ctx.acquire(${JSON.stringify(request.name)}): the attempt has ended`), { code: 'ERR_CANCELLED' })
        }
        const lease = ++this.#nextLease
        session.leases.set(lease, release)
        return lease
      }
      case 'release-lease': {
        const release = session.leases.get(request.lease)
        session.leases.delete(request.lease)
        release?.()
        return null
      }
      case 'claim':
        return listener.onClaim(request.path)
      case 'release':
        listener.onRelease(request.path)
        return null
      case 'wait-tasks': {
        if (listener.onWaitTasks === undefined) throw new Error('wait_tasks: this run cannot wait for tasks from this attempt')
        const { add, ids, timeoutMs } = request
        return this.#accepted(jobId, call, () =>
          listener.onWaitTasks!({ ...(add === undefined ? {} : { add }), ...(ids === undefined ? {} : { ids }), timeoutMs }),
        )
      }
    }
  }

  /**
   * A call that waits as long as it takes (a unit of a limit, tasks to end): the worker is told
   * at once that it is taken, and again every SERVICE_ACCEPTED_EVERY_MS while it waits, so that
   * it fails the call only when the coordinator is gone.
   */
  async #accepted<T>(jobId: string, call: number, work: () => Promise<T>): Promise<T> {
    const confirm = () => this.#reply(jobId, { call, accepted: true })
    confirm()
    const timer = setInterval(confirm, SERVICE_ACCEPTED_EVERY_MS)
    timer.unref()
    try {
      return await work()
    } finally {
      clearInterval(timer)
    }
  }
}

function end(session: Session): void {
  session.ended.abort()
  for (const release of session.leases.values()) release()
  session.leases.clear()
}

function codeOf(error: unknown): ErrorCode {
  if (isTroupeError(error)) return error.code
  const code = (error as { code?: unknown } | undefined)?.code
  if (code === 'ERR_CANCELLED') return code
  return error instanceof TypeError || error instanceof RangeError ? 'ERR_ARGUMENT_INVALID' : 'ERR_TASK_FAILED'
}

const OPS = [
  'scratchpad.page',
  'scratchpad.append',
  'messages.send',
  'messages.inbox',
  'acquire',
  'release-lease',
  'claim',
  'release',
  'wait-tasks',
]

/** Why a request from a worker is not one to take, naming the field; undefined when it is. */
function requestProblem(request: unknown): string | undefined {
  if (request === null || typeof request !== 'object') {
    return `\`request\` must be an object, got ${request === null ? 'null' : typeof request}`
  }
  const r = request as Record<string, unknown>
  const text = (field: string, max: number, optional = false): string | undefined => {
    const value = r[field]
    if (optional && value === undefined) return undefined
    if (typeof value === 'string' && value.length <= max) return undefined
    const got = typeof value === 'string' ? `${value.length} characters` : typeof value
    return `${String(r.op)}: \`${field}\` must be a string of at most ${max} characters, got ${got}`
  }
  const count = (field: string, optional = false): string | undefined => {
    const value = r[field]
    if (optional && value === undefined) return undefined
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return undefined
    return `${String(r.op)}: \`${field}\` must be an integer >= 0, got ${JSON.stringify(value) ?? typeof value}`
  }
  switch (r.op) {
    case 'scratchpad.page':
      return count('since') ?? count('limit')
    case 'scratchpad.append':
      // Not only strings: the run's pad refuses other values with its own message, as for a local attempt.
      return typeof r.text === 'string' ? text('text', MAX_SERVICE_TEXT_CHARS) : undefined
    case 'messages.send':
      return typeof r.text === 'string' ? text('text', MAX_SERVICE_TEXT_CHARS) : undefined
    case 'messages.inbox':
      return count('since') ?? count('limit', true)
    case 'acquire':
      return text('name', MAX_NAME_CHARS)
    case 'release-lease':
      return count('lease')
    case 'claim':
    case 'release':
      return text('path', MAX_NAME_CHARS)
    case 'wait-tasks': {
      const ids = r.ids
      const badIds =
        ids !== undefined &&
        (!Array.isArray(ids) || ids.length > MAX_WAIT_IDS || ids.some((id) => typeof id !== 'string' || id.length > MAX_NAME_CHARS))
      if (badIds) return `wait-tasks: \`ids\` must be an array of at most ${MAX_WAIT_IDS} task ids, got ${JSON.stringify(ids).slice(0, 80)}`
      const timeout = count('timeoutMs')
      if (timeout !== undefined) return timeout
      return (r.timeoutMs as number) > MAX_WAIT_SECONDS * 1000
        ? `wait-tasks: \`timeoutMs\` must be at most ${MAX_WAIT_SECONDS * 1000}, got ${r.timeoutMs}`
        : undefined
    }
    default:
      return `\`op\` must be one of ${OPS.join(', ')}; got ${JSON.stringify(r.op)?.slice(0, 80)}`
  }
}
