import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DagScheduler, type SchedulablePlan, type Transition } from '../../../src/runtime/schedule/scheduler.ts'

/** A plan whose arrays the test grows in place, as a run's plan grows (RunPlan). */
interface GrowingPlan extends SchedulablePlan {
  readonly tasks: { when?: string }[]
  readonly deps: number[][]
  readonly dependents: number[][]
  readonly order: number[]
}

function growingPlan(deps: readonly (readonly number[])[]): GrowingPlan {
  const plan: GrowingPlan = { tasks: [], deps: [], dependents: [], order: [] }
  grow(plan, deps)
  return plan
}

/** Appends tasks (deps by absolute index, each lower than the task's own); returns their indices. */
function grow(plan: GrowingPlan, deps: readonly (readonly number[])[]): number[] {
  const added: number[] = []
  for (const list of deps) {
    const index = plan.tasks.length
    plan.tasks.push({})
    plan.deps.push([...list])
    plan.dependents.push([])
    for (const dep of list) plan.dependents[dep]!.push(index)
    plan.order.push(index)
    added.push(index)
  }
  return added
}

/** Deps for `count` tasks appended after `existing` tasks: any earlier task, at most 3. */
const depsFor = (existing: number, count: number) =>
  fc.tuple(...Array.from({ length: count }, (_, k) => (existing + k === 0 ? fc.constant([] as number[]) : fc.uniqueArray(fc.integer({ min: 0, max: existing + k - 1 }), { maxLength: 3 }))))

const scenario = fc
  .record({ base: fc.integer({ min: 1, max: 12 }), steps: fc.array(fc.record({ fail: fc.boolean(), add: fc.integer({ min: 0, max: 4 }) }), { minLength: 1, maxLength: 40 }) })
  .chain(({ base, steps }) => {
    let total = base
    const additions = steps.map((s) => {
      const deps = depsFor(total, s.add)
      total += s.add
      return deps
    })
    return fc.record({ baseDeps: depsFor(0, base), steps: fc.constant(steps), additions: fc.tuple(...additions) })
  })

describe('DagScheduler.add (tasks added while the schedule runs)', () => {
  it('every task ends exactly once; a task is ready only after its dependencies completed, and skipped iff one did not', () => {
    fc.assert(
      fc.property(scenario, ({ baseDeps, steps, additions }) => {
        const plan = growingPlan(baseDeps)
        const scheduler = new DagScheduler(plan)
        const outcome = new Map<number, 'completed' | 'failed' | 'skipped'>()
        const readied = new Set<number>()
        const take = (t: Transition) => {
          for (const task of t.ready) {
            expect(readied.has(task)).toBe(false)
            for (const dep of plan.deps[task]!) expect(outcome.get(dep)).toBe('completed')
            readied.add(task)
          }
          for (const task of t.skipped) {
            expect(outcome.has(task)).toBe(false)
            expect(plan.deps[task]!.some((dep) => outcome.get(dep) === 'failed' || outcome.get(dep) === 'skipped')).toBe(true)
            outcome.set(task, 'skipped')
          }
        }
        take(scheduler.start())
        steps.forEach((step, k) => {
          take(scheduler.add(grow(plan, additions[k]!)))
          const task = scheduler.next()
          if (task === undefined) return
          const how = step.fail ? 'failed' : 'completed'
          outcome.set(task, how)
          take(scheduler.end(task, how))
        })
        for (let task = scheduler.next(); task !== undefined; task = scheduler.next()) {
          outcome.set(task, 'completed')
          take(scheduler.end(task, 'completed'))
        }
        expect(scheduler.done).toBe(true)
        expect(outcome.size).toBe(plan.tasks.length)
      }),
      { numRuns: 300 },
    )
  })

  it('tasks added before the start are released by start(), once', () => {
    const plan = growingPlan([[]])
    const scheduler = new DagScheduler(plan)
    expect(scheduler.add(grow(plan, [[], [0]])).ready).toEqual([])
    expect([...scheduler.start().ready].sort()).toEqual([0, 1])
    expect(scheduler.end(0, 'completed').ready).toEqual([2])
  })
})
