import type { ResolvedConfig } from './config.ts'

/**
 * Delay before the next attempt after attempt `attempt` (1-based) failed:
 * `delayMs`, doubled per attempt with `backoff: 'exponential'`, capped at `maxDelayMs`,
 * with optional full jitter.
 */
export function retryDelayFor(retry: ResolvedConfig['retry'], random: () => number = Math.random): (attempt: number) => number {
  return (attempt) => {
    const base = retry.backoff === 'exponential' ? retry.delayMs * 2 ** (attempt - 1) : retry.delayMs
    const capped = Math.min(base, retry.maxDelayMs)
    return retry.jitter ? Math.round(random() * capped) : capped
  }
}
