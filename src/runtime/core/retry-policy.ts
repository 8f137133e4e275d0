import * as Duration from 'effect/Duration'
import * as Effect from 'effect/Effect'
import * as Schedule from 'effect/Schedule'
import type { ResolvedConfig } from './config.ts'

/**
 * The retry backoff as an effect {@link Schedule}: `delayMs`, multiplied by 2 per attempt
 * with `backoff: 'exponential'` (spaced evenly with `'fixed'`), capped at `maxDelayMs`, then
 * with `jitter` scaled by a random factor in [0, 1) ("full jitter", so retries of many tasks
 * failing together spread out instead of arriving in lockstep).
 */
export function retrySchedule(retry: ResolvedConfig['retry'], random: () => number = Math.random): Schedule.Schedule<unknown> {
  const base: Schedule.Schedule<unknown> =
    retry.backoff === 'exponential' ? Schedule.exponential(Duration.millis(retry.delayMs), 2) : Schedule.spaced(Duration.millis(retry.delayMs))
  const capped = Schedule.modifyDelay(base, ({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(retry.maxDelayMs))))
  if (!retry.jitter) return capped
  return Schedule.modifyDelay(capped, ({ duration }) => Effect.sync(() => Duration.millis(Math.round(random() * Duration.toMillis(duration)))))
}

/**
 * Delay before the next attempt after attempt `attempt` (1-based) failed, read off
 * {@link retrySchedule}: the schedule is stepped `attempt` times and its last delay taken.
 * The task machine asks for one delay at a time, so the schedule is driven here rather than
 * by `Effect.retry`, which would own the attempts.
 */
export function retryDelayFor(retry: ResolvedConfig['retry'], random: () => number = Math.random): (attempt: number) => number {
  const schedule = retrySchedule(retry, random)
  const delayAfter = (attempt: number) =>
    Effect.gen(function* () {
      const step = yield* Schedule.toStep(schedule)
      let delay = Duration.zero
      for (let i = 0; i < attempt; i++) [, delay] = yield* step(0, undefined)
      return Duration.toMillis(delay)
    })
  return (attempt) => Effect.runSync(delayAfter(Math.max(1, attempt)))
}
