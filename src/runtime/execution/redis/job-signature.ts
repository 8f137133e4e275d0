import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { TroupeError } from '../../core/errors.ts'
import type { AttemptJob, AttemptJobResult, ServiceCall } from './protocol.ts'

/**
 * Jobs signed with a secret the coordinator and the workers share: anyone who can write to
 * Redis can enqueue a job, but only a holder of the secret can make one a worker runs.
 * HMAC-SHA256 over the canonical JSON of the job id, the attempt request, the module check,
 * a timestamp and a nonce. The job id names run, task and attempt, so a signature cannot be
 * moved to another attempt; the timestamp bounds how long a copied job stays valid; the
 * nonce makes every signature unique (a worker runs one job id once: see the worker's
 * completion record).
 */

/** How long a signed job may wait in the queue before a worker refuses it as stale. */
export const SIGNATURE_MAX_AGE_MS = 24 * 60 * 60 * 1000
/** Clock skew tolerated between the coordinator's and a worker's machine. */
const MAX_SKEW_MS = 5 * 60 * 1000
/** The shortest secret accepted: 16 bytes (e.g. `openssl rand -hex 32` gives 64 characters). */
const MIN_SECRET_CHARS = 16

/**
 * The shared secret: `file` (`--secret-file`), else `TROUPE_SECRET_FILE`, else `TROUPE_SECRET`;
 * undefined when none is set. Throws ERR_CONFIG_INVALID for an unreadable file or a short secret.
 */
export function loadSecret(options: { readonly file?: string | undefined; readonly env?: NodeJS.ProcessEnv } = {}): string | undefined {
  const env = options.env ?? process.env
  const file = options.file ?? env.TROUPE_SECRET_FILE
  let secret: string | undefined
  let source = 'TROUPE_SECRET'
  if (file !== undefined && file !== '') {
    source = `secret file ${file}`
    try {
      secret = readFileSync(file, 'utf8').trim()
    } catch (error) {
      throw new TroupeError('ERR_CONFIG_INVALID', `Cannot read the ${source}: ${(error as Error).message}`, { cause: error })
    }
  } else secret = env.TROUPE_SECRET
  if (secret === undefined || secret === '') return undefined
  if (secret.length < MIN_SECRET_CHARS) {
    const expected = `expected at least ${MIN_SECRET_CHARS} (e.g. \`openssl rand -hex 32\`)`
    throw new TroupeError('ERR_CONFIG_INVALID', `The shared secret from ${source} has ${secret.length} characters; ${expected}`)
  }
  return secret
}

/** The job with its signature. */
export function signJob(secret: string, jobId: string, job: AttemptJob, now = Date.now()): AttemptJob {
  // Signed as the worker will read it: after a JSON round trip through Redis.
  const unsigned = JSON.parse(JSON.stringify({ request: job.request, module: job.module })) as Pick<AttemptJob, 'request' | 'module'>
  const ts = now
  const nonce = randomBytes(16).toString('hex')
  return { ...unsigned, signature: { ts, nonce, hmac: hmacOf(secret, jobId, unsigned, ts, nonce) } }
}

/** Why a job's signature is not acceptable, or undefined when it is. */
export function signatureProblem(secret: string, jobId: string, job: AttemptJob, now = Date.now()): string | undefined {
  const signature = job.signature
  if (signature === undefined || typeof signature !== 'object') return 'it carries no signature'
  const { ts, nonce, hmac } = signature
  const wellFormed = typeof ts === 'number' && typeof nonce === 'string' && typeof hmac === 'string' && /^[0-9a-f]{64}$/.test(hmac)
  if (!wellFormed) return 'its signature is malformed'
  const unsigned = { request: job.request, module: job.module }
  const expected = Buffer.from(hmacOf(secret, jobId, unsigned, ts, nonce), 'hex')
  if (!timingSafeEqual(expected, Buffer.from(hmac, 'hex'))) return 'its signature does not match (another secret, or the job was changed)'
  if (ts > now + MAX_SKEW_MS) return `it was signed ${Math.round((ts - now) / 1000)} s in the future`
  const hours = (ms: number) => Math.round(ms / 3_600_000)
  if (now - ts > SIGNATURE_MAX_AGE_MS) return `it was signed ${hours(now - ts)} h ago (older than ${hours(SIGNATURE_MAX_AGE_MS)} h)`
  return undefined
}

/**
 * A worker's answer for a job, signed: results reach the coordinator through Redis (BullMQ's
 * return value, the completion record, pub/sub), where anyone with access could write one.
 */
export function signResult(secret: string, jobId: string, value: AttemptJobResult): AttemptJobResult {
  const unsigned = JSON.parse(JSON.stringify({ worker: value.worker, result: value.result })) as AttemptJobResult
  return { ...unsigned, signature: mac(secret, { kind: 'result', jobId, value: unsigned }) }
}

/** Why a result is not one a worker holding the secret signed, or undefined when it is. */
export function resultProblem(secret: string, jobId: string, value: AttemptJobResult | undefined): string | undefined {
  if (value === undefined || value === null || typeof value !== 'object') return 'it is not a result'
  if (typeof value.signature !== 'string' || !/^[0-9a-f]{64}$/.test(value.signature)) return 'it carries no signature'
  const expected = mac(secret, { kind: 'result', jobId, value: { worker: value.worker, result: value.result } })
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(value.signature, 'hex')) ? undefined : 'its signature does not match'
}

/** A worker's call for an attempt, as signed. */
interface WorkerCall {
  readonly call: number
  readonly tasks: unknown
  readonly wait: boolean
}

/** The signature of a worker's call for an attempt (`ctx.spawn` over pub/sub). */
export function signCall(secret: string, jobId: string, call: WorkerCall): string {
  const unsigned = JSON.parse(JSON.stringify({ call: call.call, tasks: call.tasks, wait: call.wait })) as unknown
  return mac(secret, { kind: 'call', jobId, call: unsigned })
}

/** Whether `signature` is the one {@link signCall} gives. */
export function isSignedCall(secret: string, jobId: string, call: WorkerCall, signature: unknown): boolean {
  if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/.test(signature)) return false
  return timingSafeEqual(Buffer.from(signCall(secret, jobId, call), 'hex'), Buffer.from(signature, 'hex'))
}

/**
 * The signature of a worker's `ctx` service call (scratchpad, messages, limits, claims): over
 * the job id, so it cannot act on another attempt, and the session and call number, which
 * the coordinator accepts once each (a copied call is refused).
 */
export function signService(secret: string, jobId: string, call: Omit<ServiceCall, 'type' | 'signature'>): string {
  const unsigned = JSON.parse(JSON.stringify({ call: call.call, session: call.session, request: call.request })) as unknown
  return mac(secret, { kind: 'service', jobId, call: unsigned })
}

/** Whether `call` carries the signature {@link signService} gives. */
export function isSignedService(secret: string, jobId: string, call: ServiceCall): boolean {
  const signature: unknown = call.signature
  if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/.test(signature)) return false
  return timingSafeEqual(Buffer.from(signService(secret, jobId, call), 'hex'), Buffer.from(signature, 'hex'))
}

function mac(secret: string, value: unknown): string {
  return createHmac('sha256', secret).update(canonicalJson(value)).digest('hex')
}

function hmacOf(secret: string, jobId: string, unsigned: object, ts: number, nonce: string): string {
  return createHmac('sha256', secret).update(canonicalJson({ jobId, job: unsigned, ts, nonce })).digest('hex')
}

/**
 * JSON with object keys sorted, so the bytes signed do not depend on key order (the job
 * crosses Redis as JSON; `undefined` members are dropped as JSON drops them).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`
  const entries = Object.keys(value)
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
  return `{${entries.join(',')}}`
}
