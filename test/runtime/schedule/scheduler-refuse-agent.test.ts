import { describe, expect, it } from 'vitest'
import { ReadyQueue } from '../../../src/runtime/schedule/ready-queue.ts'
import { DagScheduler, REFUSE_AGENT, type SchedulablePlan } from '../../../src/runtime/schedule/scheduler.ts'

/** Independent tasks of the given agents, in plan order (earlier ones go first: longer estimates). */
function plan(agents: readonly string[]): SchedulablePlan {
  return {
    tasks: agents.map((agent, i) => ({ agent, estimateMs: 1_000 - i })),
    deps: agents.map(() => []),
    dependents: agents.map(() => []),
    order: agents.map((_, i) => i),
  }
}

describe('an admission pass that refuses a whole agent', () => {
  it('asks once for an agent refused as a whole, however many of its tasks are ready (regression: every event walked them all)', () => {
    const scheduler = new DagScheduler(plan(Array.from({ length: 1_000 }, () => 'busy')))
    scheduler.start()
    const asked: number[] = []
    expect(scheduler.next((task) => (asked.push(task), REFUSE_AGENT))).toBeUndefined()
    expect({ asked, ready: scheduler.readyCount }).toEqual({ asked: [0], ready: 1_000 })
  })

  it('still finds a task of another agent behind the refused one, in priority order', () => {
    const scheduler = new DagScheduler(plan(['busy', 'busy', 'busy', 'free', 'busy', 'free']))
    scheduler.start()
    const asked: number[] = []
    const found = scheduler.next((task) => {
      asked.push(task)
      return task === 3 || task === 5 ? true : REFUSE_AGENT
    })
    expect({ found, asked, ready: scheduler.readyCount }).toEqual({ found: 3, asked: [0, 3], ready: 5 })
  })

  it('asks about every task when refusals are about the task alone', () => {
    const scheduler = new DagScheduler(plan(['a', 'a', 'a']))
    scheduler.start()
    const asked: number[] = []
    expect(scheduler.next((task) => (asked.push(task), false))).toBeUndefined()
    expect(asked).toEqual([0, 1, 2])
  })

  it('refuses an agent for one pass only: the next pass asks again', () => {
    const scheduler = new DagScheduler(plan(['a', 'a']))
    scheduler.start()
    expect(scheduler.next(() => REFUSE_AGENT)).toBeUndefined()
    expect(scheduler.next(() => true)).toBe(0)
  })
})

describe('ReadyQueue counts per class', () => {
  it('counts the tasks of each class as they are pushed, popped and drained', () => {
    const queue = new ReadyQueue((a, b) => a < b, (task) => task % 2)
    for (const task of [4, 1, 2, 3, 0]) queue.push(task)
    queue.pop()
    queue.pop()
    const counts = [queue.countOf(0), queue.countOf(1)]
    queue.drain()
    expect({ counts, drained: [queue.countOf(0), queue.countOf(1)] }).toEqual({ counts: [2, 1], drained: [0, 0] })
  })
})
