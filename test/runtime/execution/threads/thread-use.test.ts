import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PROBE_DEADLINE_MS, ThreadUse } from '../../../../src/runtime/execution/threads/thread-use.ts'

/** Holds `n` attempts of `agent` and returns the routes they were started with, in order. */
function holdN(use: ThreadUse, agent: string, n: number): string[] {
  const started: string[] = []
  for (let i = 0; i < n; i++) {
    expect(use.route(agent)).toBe('hold')
    use.hold(agent, (route) => started.push(route))
  }
  return started
}

describe('ThreadUse: which attempts share a thread, learnt from the threads', () => {
  beforeEach(() => void vi.useFakeTimers())
  afterEach(() => void vi.useRealTimers())

  it('probes an unknown agent on one thread per core, and holds the attempts beyond', () => {
    const use = new ThreadUse(2)
    expect([use.route('a'), use.route('a'), use.route('a')]).toEqual(['probe', 'probe', 'hold'])
  })

  it('starts the held attempts on a shared thread once a probe finds the loop idle', () => {
    const use = new ThreadUse(1)
    use.route('a')
    const started = holdN(use, 'a', 3)
    use.probed('a', 0.02)
    expect(started).toEqual(['share', 'share', 'share'])
    expect(use.route('a')).toBe('share')
  })

  it('starts the held attempts alone once a probe finds the loop busy', () => {
    const use = new ThreadUse(1)
    use.route('a')
    const started = holdN(use, 'a', 2)
    use.probed('a', 0.9)
    expect(started).toEqual(['alone', 'alone'])
    expect(use.route('a')).toBe('alone')
  })

  it('starts the held attempts alone when no probe answers before the deadline (a loop that never yields)', () => {
    const use = new ThreadUse(1)
    use.route('a')
    const started = holdN(use, 'a', 2)
    vi.advanceTimersByTime(PROBE_DEADLINE_MS - 1)
    expect(started).toEqual([])
    vi.advanceTimersByTime(1)
    expect(started).toEqual(['alone', 'alone'])
    expect(use.route('a')).toBe('alone')
  })

  it('releases the held attempts alone when a probed attempt ends before its probe (too short to tell)', () => {
    const use = new ThreadUse(1)
    use.route('a')
    const started = holdN(use, 'a', 1)
    use.ended('a', true, { cpuMs: 0.1, wallMs: 0.2 })
    expect(started).toEqual(['alone'])
    expect(use.route('a')).toBe('alone')
  })

  it('changes its mind on an attempt long enough to tell: busy, then seen waiting', () => {
    const use = new ThreadUse(1)
    use.route('a')
    use.probed('a', 1)
    use.ended('a', false, { cpuMs: 5, wallMs: 1_000 })
    expect(use.route('a')).toBe('share')
  })

  it('keeps a verdict when a later attempt is too short to tell', () => {
    const use = new ThreadUse(1)
    use.route('a')
    use.probed('a', 0.01)
    use.ended('a', true, { cpuMs: 1, wallMs: 1 })
    expect(use.route('a')).toBe('share')
  })

  it('learns each agent on its own', () => {
    const use = new ThreadUse(1)
    use.route('a')
    use.probed('a', 0.01)
    expect([use.route('a'), use.route('b'), use.route('b')]).toEqual(['share', 'probe', 'hold'])
  })

  it('starts every held attempt alone and arms no timer once closed', () => {
    const use = new ThreadUse(1)
    use.route('a')
    const started = holdN(use, 'a', 2)
    use.close()
    expect(started).toEqual(['alone', 'alone'])
    expect(vi.getTimerCount()).toBe(0)
  })
})
