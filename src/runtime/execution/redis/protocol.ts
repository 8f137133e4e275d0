import type { UsageReport } from '../../admission/usage.ts'
import type { ErrorCode } from '../../core/errors.ts'
import type { AttemptRequest, AttemptResult, SpawnAnswer } from '../executor.ts'

/** The BullMQ queue every run of a backend shares; workers of any run take from it. */
export const QUEUE = 'attempts'
/** Key prefix of troupe's data in Redis. */
export const PREFIX = 'troupe'
/** Pub/sub channel a worker reports an attempt's progress, logs and usage on. */
export const eventsChannel = (jobId: string): string => `${PREFIX}:events:${jobId}`
export const EVENTS_PATTERN = `${PREFIX}:events:*`
/** Pub/sub channel the coordinator answers a worker's calls for one attempt on (`ctx.spawn`). */
export const answersChannel = (jobId: string): string => `${PREFIX}:answers:${jobId}`
/** Pub/sub channel the coordinator asks workers to abort an attempt on (message: the job id). */
export const ABORT_CHANNEL = `${PREFIX}:abort`

/** Which worker holds an attempt (its name), while it runs and after. */
export const claimKey = (jobId: string): string => `${PREFIX}:claim:${jobId}`
/** An attempt's result (JSON {@link AttemptJobResult}), written by its worker before BullMQ hears of it. */
export const completionKey = (jobId: string): string => `${PREFIX}:done:${jobId}`
/** How long claims and completion records stay in Redis (s). */
export const COMPLETION_TTL_S = 24 * 3600

/** One attempt as a job: the request, and how to check the agent's module is the coordinator's. */
export interface AttemptJob {
  readonly request: AttemptRequest
  /** Module agents: the module path relative to the coordinator's working directory, and its content hash. */
  readonly module?: { readonly relativePath: string; readonly sha256: string }
  /** The coordinator's signature over the above (a worker with a secret runs nothing unsigned). */
  readonly signature?: JobSignature
  /** Workers that put the job back because they cannot run its agent (not signed: it grows as workers refuse). */
  readonly refusedBy?: readonly string[]
}

/** A job's signature (see job-signature.ts), next to what it signs. */
export interface JobSignature {
  /** When it was signed (epoch ms). */
  readonly ts: number
  readonly nonce: string
  /** hex HMAC-SHA256. */
  readonly hmac: string
}

/** What a worker returns for a job. */
export interface AttemptJobResult {
  readonly result: AttemptResult
  /** The worker's name (`troupe worker --name`), for `RunResult.tasks[id].worker`. */
  readonly worker: string
  /** The worker's HMAC over the above (job-signature.ts `signResult`), when it holds the secret. */
  readonly signature?: string
}

/** What a worker reports while an attempt runs. */
export type AttemptEvent =
  | { readonly type: 'progress'; readonly fraction: number; readonly message: string | undefined }
  | { readonly type: 'log'; readonly message: string }
  | { readonly type: 'usage'; readonly report: UsageReport }
  /** A rate limit the agent retries by itself: the coordinator pauses the task's limits. */
  | { readonly type: 'rate-limited'; readonly until: number; readonly message: string }
  /** `session`: this run of the attempt on this worker (a job taken again after its worker died gets a new one). */
  | { readonly type: 'started'; readonly worker: string; readonly session?: string }
  /** The attempt's result, once recorded (before BullMQ's completion, which a Redis fault can lose). */
  | { readonly type: 'completed'; readonly value: AttemptJobResult }
  /** `ctx.spawn` (or `add_tasks`) on the worker: the coordinator owns the DAG, and answers on {@link answersChannel}. */
  | { readonly type: 'spawn'; readonly call: number; readonly tasks: unknown; readonly wait: boolean; readonly signature?: string }
  /** A `ctx` service call on the worker (scratchpad, messages, limits, claims): answered with a {@link ServiceReply}. */
  | ServiceCall

/**
 * What an attempt on a worker asks of its run through `ctx`: the same calls as the attempt
 * listener's, answered by the coordinator's listener of that attempt.
 */
export type ServiceRequest =
  | { readonly op: 'scratchpad.page'; readonly since: number; readonly limit: number }
  | { readonly op: 'scratchpad.append'; readonly text: string }
  | { readonly op: 'messages.send'; readonly to: string; readonly text: string }
  | { readonly op: 'messages.inbox'; readonly since: number; readonly limit?: number }
  /** Answered with `{ accepted: true }` at once, then with the lease id once a unit is held. */
  | { readonly op: 'acquire'; readonly name: string }
  | { readonly op: 'release-lease'; readonly lease: number }
  | { readonly op: 'claim'; readonly path: string }
  | { readonly op: 'release'; readonly path: string }
  /** `wait_tasks` / `add_tasks` with `wait` (WaitTasksRequest): accepted at once, answered once the tasks ended or the timeout ran out. */
  | { readonly op: 'wait-tasks'; readonly add?: unknown; readonly ids?: readonly string[]; readonly timeoutMs: number }

/** A service call as it crosses Redis, signed like a spawn call (job-signature.ts `signService`). */
export interface ServiceCall {
  readonly type: 'service'
  readonly call: number
  /** The `session` of the attempt's `started` event: calls of an earlier run of the attempt are refused. */
  readonly session: string
  readonly request: ServiceRequest
  readonly signature?: string
}

/**
 * The coordinator's answer to a service call: accepted (still working on it: sent again every
 * SERVICE_ACCEPTED_EVERY_MS until the answer), a value, or a refusal with the local code.
 */
export type ServiceReply =
  | { readonly call: number; readonly accepted: true }
  | { readonly call: number; readonly value: unknown }
  | { readonly call: number; readonly error: { readonly code: ErrorCode; readonly message: string } }

/** Longest text field of a service call (a note, a message, a path, a limit name), in characters. */
export const MAX_SERVICE_TEXT_CHARS = 64 * 1024
/** Longest service call on the wire, in characters: larger ones are refused unread. */
export const MAX_SERVICE_CALL_CHARS = MAX_SERVICE_TEXT_CHARS + 4 * 1024
/**
 * How long a worker waits for the coordinator to take up a service call, or to confirm again
 * that it is still working on one it accepted, before the call fails (ERR_BACKEND_UNAVAILABLE).
 */
export const SERVICE_TIMEOUT_MS = 30_000
/** How often the coordinator confirms a call it accepted and still works on (`ctx.acquire`, `wait_tasks`). */
export const SERVICE_ACCEPTED_EVERY_MS = SERVICE_TIMEOUT_MS / 3

/** The coordinator's answer to a worker's call of one attempt. */
export interface CallAnswer {
  readonly call: number
  readonly answer: SpawnAnswer
}

/** A job id per attempt: enqueueing the same attempt twice (a resumed coordinator) is idempotent. */
export function jobIdOf(request: Pick<AttemptRequest, 'runId' | 'taskId' | 'attempt'>): string {
  // BullMQ reserves ':' in ids; task ids are user-chosen, so encode them.
  return `${request.runId}.${encodeURIComponent(request.taskId).replace(/[.:]/g, (c) => (c === '.' ? '%2E' : '%3A'))}.${request.attempt}`
}

/** A completion record's value (`completionKey`), or undefined for none or a foreign one. */
export function parseCompletion(text: string | null): AttemptJobResult | undefined {
  if (text === null) return undefined
  try {
    return JSON.parse(text) as AttemptJobResult
  } catch {
    return undefined
  }
}

/** The `troupe worker --name` of a BullMQ worker connection (`queue.getWorkers()` gives `PREFIX:QUEUE:w:NAME`). */
export function workerNameOf(client: { readonly rawname?: string }): string {
  return String(client.rawname ?? '').replace(/^.*?:w:/, '')
}
