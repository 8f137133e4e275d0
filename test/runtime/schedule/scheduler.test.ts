import { describe, expect, it } from 'vitest'
import type { Priority } from '../../../src/runtime/plan/plan.ts'
import { DagScheduler, estimatedDurations, type SchedulablePlan } from '../../../src/runtime/schedule/scheduler.ts'

interface Spec {
  readonly deps?: readonly number[]
  readonly priority?: Priority
  readonly estimateMs?: number
  readonly stage?: string
}

/** A bare schedulable plan: tasks by index, deps by index, plan order = index order. */
function plan(specs: readonly Spec[]): SchedulablePlan {
  const deps = specs.map((s) => s.deps ?? [])
  const dependents: number[][] = specs.map(() => [])
  deps.forEach((list, i) => list.forEach((d) => dependents[d]!.push(i)))
  return { tasks: specs.map(({ priority, estimateMs, stage }) => ({ priority, estimateMs, stage })), deps, dependents, order: specs.map((_, i) => i) }
}

function drain(scheduler: DagScheduler): number[] {
  const out: number[] = []
  for (let task = scheduler.next(); task !== undefined; task = scheduler.next()) out.push(task)
  return out
}

describe('DagScheduler ready order', () => {
  it('orders ready tasks strictly by priority class', () => {
    const scheduler = new DagScheduler(plan([{ priority: 'low' }, { priority: 'critical' }, { priority: 'medium' }, { priority: 'high' }]))
    scheduler.start()
    expect(drain(scheduler)).toEqual([1, 3, 2, 0])
  })

  it('puts priority before the critical path', () => {
    const scheduler = new DagScheduler(plan([{ estimateMs: 1000 }, { priority: 'high', estimateMs: 1 }]))
    scheduler.start()
    expect(drain(scheduler)).toEqual([1, 0])
  })

  it('starts the task with the longest remaining path first within a priority class', () => {
    // 0 is alone (50); 1 heads a chain 1 → 2 (10 + 100).
    const scheduler = new DagScheduler(plan([{ estimateMs: 50 }, { estimateMs: 10 }, { deps: [1], estimateMs: 100 }]))
    scheduler.start()
    expect(drain(scheduler)).toEqual([1, 0])
  })

  it('breaks a b-level tie by the work downstream', () => {
    // Both have b-level 20; 1 unlocks two tasks, 0 one.
    const scheduler = new DagScheduler(
      plan([{ estimateMs: 10 }, { estimateMs: 10 }, { deps: [0], estimateMs: 10 }, { deps: [1], estimateMs: 10 }, { deps: [1], estimateMs: 10 }]),
    )
    scheduler.start()
    expect(drain(scheduler)).toEqual([1, 0])
  })

  it('falls back to plan order on a full tie', () => {
    const scheduler = new DagScheduler(plan([{}, {}, {}]))
    scheduler.start()
    expect(drain(scheduler)).toEqual([0, 1, 2])
  })

  it('leaves tasks refused by admit ready, in their place', () => {
    const scheduler = new DagScheduler(plan([{ priority: 'high' }, {}, { priority: 'low' }]))
    scheduler.start()
    expect([scheduler.next((t) => t !== 0), ...drain(scheduler)]).toEqual([1, 0, 2])
  })
})

describe('estimatedDurations', () => {
  it('counts a task without an estimate as the median estimate', () => {
    expect(Array.from(estimatedDurations(plan([{ estimateMs: 10 }, { estimateMs: 30 }, { estimateMs: 20 }, {}])))).toEqual([10, 30, 20, 20])
  })

  it('counts every task as 1 when none has an estimate', () => {
    expect(Array.from(estimatedDurations(plan([{}, {}])))).toEqual([1, 1])
  })
})

describe('DagScheduler transitions', () => {
  it('releases a task once all its dependencies completed', () => {
    const scheduler = new DagScheduler(plan([{}, {}, { deps: [0, 1] }]))
    scheduler.start()
    scheduler.end(0, 'completed')
    expect(scheduler.end(1, 'completed').ready).toEqual([2])
  })

  it('skips every transitive dependent of a failed task', () => {
    const scheduler = new DagScheduler(plan([{}, { deps: [0] }, { deps: [1] }, {}]))
    scheduler.start()
    expect([...scheduler.end(0, 'failed').skipped].sort()).toEqual([1, 2])
  })

  it('holds the next dependency level back until the current one has ended (waves)', () => {
    // 2 depends on 0 only, but is level 1 while 1 (level 0) is still running.
    const scheduler = new DagScheduler(plan([{}, {}, { deps: [0] }]), 'waves')
    scheduler.start()
    expect([scheduler.end(0, 'completed').ready, scheduler.end(1, 'completed').ready]).toEqual([[], [2]])
  })

  it('opens a stage only when the previous stage has ended (pipeline)', () => {
    const scheduler = new DagScheduler(plan([{ stage: 'build' }, { stage: 'build' }, { stage: 'test' }]), 'pipeline')
    const first = scheduler.start().ready
    expect([first, scheduler.end(0, 'completed').ready, scheduler.end(1, 'completed').ready]).toEqual([[0, 1], [], [2]])
  })

  it('skips every later stage once a stage had a failure (pipeline fail-fast)', () => {
    const scheduler = new DagScheduler(plan([{ stage: 'build' }, { stage: 'build' }, { stage: 'test' }, { stage: 'deploy' }]), 'pipeline')
    scheduler.start()
    scheduler.end(0, 'failed')
    expect([...scheduler.end(1, 'completed').skipped].sort()).toEqual([2, 3])
  })

  it('counts journaled tasks as completed without handing them out', () => {
    const scheduler = new DagScheduler(plan([{}, { deps: [0] }]))
    expect(scheduler.start([0]).ready).toEqual([1])
  })

  it('is done once every task ended', () => {
    const scheduler = new DagScheduler(plan([{}, { deps: [0] }]))
    scheduler.start()
    scheduler.end(scheduler.next()!, 'completed')
    scheduler.end(scheduler.next()!, 'completed')
    expect(scheduler.done).toBe(true)
  })
})

describe('DagScheduler: conditions', () => {
  /** a → b (when) → c (no when) → d (when); a → e (no when). */
  const conditional = {
    tasks: [{}, { when: 'x' }, {}, { when: 'y' }, {}],
    deps: [[], [0], [1], [2], [0]],
    dependents: [[1, 4], [2], [3], [], []],
    order: [0, 1, 2, 3, 4],
  }

  it('a false condition skips the task and its dependents without a when; a later when is still evaluated', () => {
    const seen: number[] = []
    const s = new DagScheduler(conditional, 'concurrent', undefined, (t) => (seen.push(t), t === 1 ? 'skip' : 'run'))
    expect(s.start().ready).toEqual([0])
    const t = s.end(s.next()!, 'completed')
    expect(t.conditionSkipped).toEqual([1, 2])
    expect([...t.ready].sort()).toEqual([3, 4])
    expect(seen).toEqual([1, 3])
  })

  it('a condition that fails ends the task failed and skips its dependents', () => {
    const s = new DagScheduler(conditional, 'concurrent', undefined, (t) => (t === 1 ? 'fail' : 'run'))
    s.start()
    const t = s.end(s.next()!, 'completed')
    expect(t.conditionFailed).toEqual([1])
    expect(t.skipped).toEqual([2, 3])
    expect(t.ready).toEqual([4])
  })
})

describe('DagScheduler ready gate', () => {
  it('holds a task the gate refuses out of the ready set until it is requeued', () => {
    const scheduler = new DagScheduler(plan([{}, {}, { deps: [0] }]), 'concurrent', undefined, undefined, (task) => task !== 1)
    const start = scheduler.start()
    expect([start.ready, start.held]).toEqual([[0], [1]])
    expect(drain(scheduler)).toEqual([0])
    scheduler.requeue(1)
    expect(drain(scheduler)).toEqual([1])
  })

  it('asks the gate only for tasks whose dependencies are done, once each', () => {
    const asked: number[] = []
    const scheduler = new DagScheduler(plan([{}, { deps: [0] }]), 'concurrent', undefined, undefined, (task) => {
      asked.push(task)
      return true
    })
    scheduler.start()
    expect(asked).toEqual([0])
    scheduler.next()
    expect(scheduler.end(0, 'completed').ready).toEqual([1])
    expect(asked).toEqual([0, 1])
  })
})
