import { describe, expect, it } from 'vitest'
import {
  DEFAULT_RATE_LIMIT_DELAY_MS,
  MAX_RATE_LIMIT_DELAY_MS,
  parseDuration,
  rateLimitedUntil,
} from '../../../../src/runtime/execution/llm/retry-after.ts'

const NOW = Date.parse('2026-01-01T00:00:00Z')
const until = (headers: Record<string, string>) => rateLimitedUntil(new Headers(headers), NOW) - NOW

describe('rateLimitedUntil', () => {
  it('reads retry-after in seconds', () => {
    expect(until({ 'retry-after': '7' })).toBe(7000)
  })

  it('reads retry-after as an HTTP date', () => {
    expect(until({ 'retry-after': new Date(NOW + 12_000).toUTCString() })).toBe(12_000)
  })

  it('prefers retry-after-ms over retry-after', () => {
    expect(until({ 'retry-after-ms': '250', 'retry-after': '7' })).toBe(250)
  })

  it("reads OpenAI's x-ratelimit-reset-* durations, the later of the two", () => {
    expect(until({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' })).toBe(360_000)
  })

  it("reads Anthropic's anthropic-ratelimit-*-reset dates", () => {
    expect(until({ 'anthropic-ratelimit-requests-reset': new Date(NOW + 3000).toISOString() })).toBe(3000)
  })

  it('treats a date already past as no wait', () => {
    expect(until({ 'retry-after': new Date(NOW - 5000).toUTCString() })).toBe(0)
  })

  it('falls back to the default delay when no header names a reset', () => {
    expect(until({})).toBe(DEFAULT_RATE_LIMIT_DELAY_MS)
  })

  it('ignores a malformed retry-after', () => {
    expect(until({ 'retry-after': 'soon' })).toBe(DEFAULT_RATE_LIMIT_DELAY_MS)
  })

  it('caps an absurdly long reset', () => {
    expect(until({ 'retry-after': String(7 * 24 * 3600) })).toBe(MAX_RATE_LIMIT_DELAY_MS)
  })
})

describe('parseDuration', () => {
  it('reads hours, minutes, seconds and milliseconds', () => {
    expect([parseDuration('20ms'), parseDuration('1.5s'), parseDuration('1h2m3s')]).toEqual([20, 1500, 3_723_000])
  })

  it('rejects text that is not a duration', () => {
    expect([parseDuration(''), parseDuration('abc'), parseDuration('5')]).toEqual([undefined, undefined, undefined])
  })
})
