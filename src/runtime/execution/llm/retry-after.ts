/**
 * When a rate-limited provider says it will take requests again, from the headers of its
 * 429 response. Pure: headers and `now` in, epoch ms out.
 */

/** Used when a 429 names no reset time at all. */
export const DEFAULT_RATE_LIMIT_DELAY_MS = 30_000

/** A reset further away than this is treated as this (a misread header must not stall a run for days). */
export const MAX_RATE_LIMIT_DELAY_MS = 60 * 60_000

/** The part of `Headers` this reads. */
export interface HeaderSource {
  get(name: string): string | null
}

/**
 * Epoch ms when the provider accepts requests again. Reads, in order: `retry-after-ms`
 * (milliseconds), `retry-after` (seconds, or an HTTP date), then the providers' own reset
 * headers (OpenAI's `x-ratelimit-reset-requests`/`-tokens` as `6m0s`-style durations;
 * Anthropic's `anthropic-ratelimit-*-reset` as RFC 3339 dates, the latest of them).
 * Falls back to `now + DEFAULT_RATE_LIMIT_DELAY_MS`.
 */
export function rateLimitedUntil(headers: HeaderSource | undefined, now: number): number {
  const delay = retryDelayMs(headers, now)
  return now + Math.min(MAX_RATE_LIMIT_DELAY_MS, delay ?? DEFAULT_RATE_LIMIT_DELAY_MS)
}

/** The delay the headers ask for, in ms (>= 0), or undefined when they name none. */
export function retryDelayMs(headers: HeaderSource | undefined, now: number): number | undefined {
  if (headers === undefined) return undefined
  const ms = nonNegative(Number.parseFloat(headers.get('retry-after-ms') ?? ''))
  if (ms !== undefined) return ms
  const retryAfter = headers.get('retry-after')?.trim()
  if (retryAfter) {
    const seconds = /^\d+(\.\d+)?$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined
    const delay = seconds ?? nonNegative(Date.parse(retryAfter) - now, true)
    if (delay !== undefined) return delay
  }
  const openAi = [headers.get('x-ratelimit-reset-requests'), headers.get('x-ratelimit-reset-tokens')].map(parseDuration)
  const anthropic = ['requests', 'tokens', 'input-tokens', 'output-tokens'].map((kind) =>
    nonNegative(Date.parse(headers.get(`anthropic-ratelimit-${kind}-reset`) ?? '') - now, true),
  )
  const delays = [...openAi, ...anthropic].filter((d): d is number => d !== undefined)
  return delays.length === 0 ? undefined : Math.max(...delays)
}

/** `1s`, `6m0s`, `20ms`, `1h2m3.5s` → ms. */
export function parseDuration(text: string | null | undefined): number | undefined {
  if (!text) return undefined
  const match = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(text.trim())
  if (match === null || match.slice(1).every((part) => part === undefined)) return undefined
  const [h, m, s, ms] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number]
  return ((h * 60 + m) * 60 + s) * 1000 + ms
}

/** A finite delay >= 0; a date already past counts as 0 when `clampPast`. */
function nonNegative(value: number, clampPast = false): number | undefined {
  if (!Number.isFinite(value)) return undefined
  if (value < 0) return clampPast ? 0 : undefined
  return value
}
