import type { AttemptError } from '../executor.ts'
import type { LlmAgentSpec } from '../../plan/agent-spec.ts'
import { rateLimitedUntil, type HeaderSource } from './retry-after.ts'

/** What a failed call is judged against. */
export interface FailedCall {
  readonly agent: LlmAgentSpec
  /** Scrubbed from every message: SDK errors can echo request headers or keys. */
  readonly apiKey: string
  readonly aborted: boolean
  readonly now: number
}

/** The fields of the SDKs' `APIError` (openai and @anthropic-ai/sdk share the shape). */
interface ApiErrorLike {
  readonly status?: unknown
  readonly headers?: unknown
  readonly error?: unknown
  readonly message?: unknown
  readonly name?: unknown
}

/**
 * Maps what a provider call threw to the attempt's error:
 * - aborted by the run → ERR_CANCELLED;
 * - 429 → `rateLimitedUntil` from the response headers (the run pauses the task's limits),
 *   except OpenAI's `insufficient_quota`, which no wait fixes (not retryable);
 * - 408, 409, 5xx (Anthropic's 529 "overloaded" too), network errors → retryable ERR_TASK_FAILED;
 * - other 4xx (400, 401, 403, 404, 422) → ERR_TASK_FAILED, not retryable.
 * No message carries the API key: it is replaced by `[redacted]`.
 */
export function attemptErrorOf(thrown: unknown, call: FailedCall): AttemptError {
  const scrub = scrubber(call.apiKey)
  const who = `Agent "${call.agent.name}" (kind ${call.agent.kind}, model ${call.agent.model})`
  const error = (typeof thrown === 'object' && thrown !== null ? thrown : { message: String(thrown) }) as ApiErrorLike
  const detail = scrub(typeof error.message === 'string' ? error.message : String(thrown))
  const cause = { name: typeof error.name === 'string' ? error.name : 'Error', message: detail }
  if (call.aborted) return { code: 'ERR_CANCELLED', message: `${who}: the request was aborted`, retryable: false }
  const status = typeof error.status === 'number' ? error.status : undefined
  const endpoint = call.agent.baseUrl ?? (call.agent.kind === 'openai' ? 'api.openai.com' : 'api.anthropic.com')
  if (status === undefined) {
    return { code: 'ERR_TASK_FAILED', message: `${who}: request to ${endpoint} failed: ${detail}`, retryable: true, cause }
  }
  if (status === 429) {
    if (errorCode(error.error) === 'insufficient_quota' || errorCode(error) === 'insufficient_quota') {
      return { code: 'ERR_TASK_FAILED', message: `${who}: HTTP 429 insufficient_quota from ${endpoint}: ${detail}; waiting does not help — check the account's plan and billing`, retryable: false, cause }
    }
    const headers = isHeaders(error.headers) ? error.headers : undefined
    const until = rateLimitedUntil(headers, call.now)
    return {
      code: 'ERR_TASK_FAILED',
      message: `${who}: rate-limited by ${endpoint} (HTTP 429) until ${new Date(until).toISOString()}: ${detail}`,
      retryable: true,
      rateLimitedUntil: until,
      cause,
    }
  }
  const retryable = status === 408 || status === 409 || status >= 500
  const hint =
    status === 401 || status === 403
      ? `; check the key in the environment variable ${call.agent.apiKeyEnv}`
      : status === 404
        ? `; check the model name and baseUrl (${endpoint})`
        : ''
  return { code: 'ERR_TASK_FAILED', message: `${who}: HTTP ${status} from ${endpoint}: ${detail}${hint}`, retryable, cause }
}

/** Replaces every occurrence of `secret` (and a bearer token in general) in a string. */
export function scrubber(secret: string): (text: string) => string {
  return (text) => {
    let out = secret.length > 0 ? text.split(secret).join('[redacted]') : text
    out = out.replace(/(bearer\s+|x-api-key["':=\s]+)[^\s"',;]+/gi, '$1[redacted]')
    return out
  }
}

function errorCode(body: unknown): unknown {
  return typeof body === 'object' && body !== null ? (body as { code?: unknown }).code : undefined
}

function isHeaders(value: unknown): value is HeaderSource {
  return typeof value === 'object' && value !== null && typeof (value as HeaderSource).get === 'function'
}
