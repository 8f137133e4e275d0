import type { Clock } from '../../src/runtime/core/clock.ts'

/** A clock whose timers run only when the test moves time forward. */
export interface TestClock extends Clock {
  /** Moves time forward by `ms`, running due timers in time order and letting promises settle after each. */
  advance(ms: number): Promise<void>
  /** Moves time forward by `ms`, running due timers in time order, synchronously. */
  advanceSync(ms: number): void
  /** Timers set and not yet run or cleared. */
  pending(): number
}

export function testClock(start = 0): TestClock {
  let now = start
  let nextId = 0
  const timers = new Map<number, { at: number; fn: () => void }>()
  const nextDue = (until: number) => [...timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(++nextId, { at: now + Math.max(0, ms), fn })
      return nextId
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
    pending: () => timers.size,
    async advance(ms) {
      const until = now + ms
      for (let due = nextDue(until); due !== undefined; due = nextDue(until)) {
        timers.delete(due[0])
        now = due[1].at
        due[1].fn()
        await new Promise((resolve) => setImmediate(resolve))
      }
      now = until
    },
    advanceSync(ms) {
      const until = now + ms
      for (let due = nextDue(until); due !== undefined; due = nextDue(until)) {
        timers.delete(due[0])
        now = due[1].at
        due[1].fn()
      }
      now = until
    },
  }
}
