import { describe, expect, it } from 'vitest'
import { sharingBalancer } from '../../../../src/runtime/execution/threads/thread-balancer.ts'

/** A thread as piscina shows it: an abortable task makes its usage Infinity. */
const thread = (currentUsage: number, isRunningAbortableTask = false) => ({ currentUsage: isRunningAbortableTask ? Infinity : currentUsage, isRunningAbortableTask })
const waiting = { isAbortable: false }
const exclusive = { isAbortable: true }

describe('sharingBalancer', () => {
  const pick = sharingBalancer(4)

  it('gives an abortable task an idle thread', () => {
    const idle = thread(0)
    expect(pick(exclusive, [thread(1), idle])).toBe(idle)
  })

  it('starts a new thread for an abortable task rather than share a busy one', () => {
    expect(pick(exclusive, [thread(1), thread(2)])).toBeNull()
  })

  it('puts a waiting task on an idle thread before sharing a busy one', () => {
    const idle = thread(0)
    expect(pick(waiting, [thread(1), idle])).toBe(idle)
  })

  it('shares the least busy thread among those running only waiting tasks', () => {
    const least = thread(1)
    expect(pick(waiting, [thread(3), least, thread(2)])).toBe(least)
  })

  it('never puts a waiting task beside an abortable one', () => {
    expect(pick(waiting, [thread(1, true)])).toBeNull()
  })

  it('starts a new thread once every sharing thread holds its bound', () => {
    expect(pick(waiting, [thread(4), thread(4)])).toBeNull()
  })

  it('gives a thread being ended (only abandoned attempts on it) nothing new, idle or not', () => {
    const retiring = { id: 7, currentUsage: 1, isRunningAbortableTask: false }
    const other = { id: 8, currentUsage: 2, isRunningAbortableTask: false }
    const pickAround = sharingBalancer(4, new Set([7]))
    expect([pickAround(waiting, [retiring, other]), pickAround(exclusive, [{ ...retiring, currentUsage: 0 }])]).toEqual([other, null])
  })
})
