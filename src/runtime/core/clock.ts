/**
 * The clock every timed part of a run uses (timestamps, attempt timeouts, retry delays,
 * limit windows, governor samples). A leaf: injected, so tests drive time themselves.
 */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}
