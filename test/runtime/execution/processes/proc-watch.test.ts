import { afterEach, describe, expect, it, vi } from 'vitest'
import { watchProcs } from '../../../../src/runtime/execution/processes/proc-watch.ts'
import type { ProcIndex } from '../../../../src/runtime/execution/processes/process-tree.ts'

describe('watchProcs', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('gives the watchers due at the same tick one shared reading of /proc', () => {
    vi.useFakeTimers()
    const fast: ProcIndex[] = []
    const slow: ProcIndex[] = []
    const unwatchFast = watchProcs(250, (procs) => fast.push(procs))
    const unwatchSlow = watchProcs(500, (procs) => slow.push(procs))
    vi.advanceTimersByTime(1_000)
    unwatchFast()
    unwatchSlow()
    expect(fast).toHaveLength(4)
    expect(slow).toHaveLength(2)
    expect(slow.every((procs) => fast.includes(procs))).toBe(true)
    expect(fast[0]!.byPid.get(process.pid)?.pid).toBe(process.pid)
  })

  it('calls a watcher no more once it has unwatched', () => {
    vi.useFakeTimers()
    const seen: ProcIndex[] = []
    const unwatch = watchProcs(250, (procs) => seen.push(procs))
    vi.advanceTimersByTime(250)
    unwatch()
    vi.advanceTimersByTime(1_000)
    expect(seen).toHaveLength(1)
  })
})
