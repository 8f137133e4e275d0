import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { STRATEGIES } from '../../../src/runtime/plan/plan.ts'
import type { SchedulablePlan } from '../../../src/runtime/schedule/scheduler.ts'
import { simulate, validateSchedule } from '../../../src/runtime/schedule/simulate.ts'

function graph(deps: readonly (readonly number[])[], estimates: readonly number[]): SchedulablePlan {
  const dependents: number[][] = deps.map(() => [])
  deps.forEach((list, i) => list.forEach((d) => dependents[d]!.push(i)))
  return { tasks: estimates.map((estimateMs) => ({ estimateMs })), deps, dependents, order: deps.map((_, i) => i) }
}

/** One chain of `links` × `linkMs` plus `shorts` independent tasks of `shortMs`. */
function chainAndShorts(links: number, linkMs: number, shorts: number, shortMs: number): { plan: SchedulablePlan; lowerBound: number } {
  const deps = [...Array.from({ length: links }, (_, i) => (i === 0 ? [] : [i - 1])), ...Array.from({ length: shorts }, () => [])]
  const estimates = [...Array<number>(links).fill(linkMs), ...Array<number>(shorts).fill(shortMs)]
  return { plan: graph(deps, estimates), lowerBound: Math.max(links * linkMs, (links * linkMs + shorts * shortMs) / 2) }
}

function bounds(plan: SchedulablePlan, durations: Float64Array, workers: number): { cp: number; work: number } {
  const finish = new Float64Array(durations.length)
  let cp = 0
  let work = 0
  for (const task of plan.order) {
    let start = 0
    for (const dep of plan.deps[task]!) start = Math.max(start, finish[dep]!)
    finish[task] = start + durations[task]!
    cp = Math.max(cp, finish[task]!)
    work += durations[task]!
  }
  return { cp, work: work / workers }
}

const randomDag = fc
  .integer({ min: 1, max: 30 })
  .chain((n) =>
    fc.record({
      deps: fc.tuple(...Array.from({ length: n }, (_, i) => (i === 0 ? fc.constant([] as number[]) : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 4 })))),
      durations: fc.array(fc.integer({ min: 0, max: 20 }), { minLength: n, maxLength: n }),
      workers: fc.integer({ min: 1, max: 6 }),
      strategy: fc.constantFrom(...STRATEGIES),
    }),
  )

describe('simulate', () => {
  it('finishes a long chain plus many short tasks within 5 % of the lower bound on 2 workers', () => {
    const { plan, lowerBound } = chainAndShorts(10, 100, 40, 10)
    expect(simulate(plan, { workers: 2 }).makespanMs).toBeLessThanOrEqual(lowerBound * 1.05)
  })

  it('is measurably worse with the waves strategy on the same plan', () => {
    const { plan } = chainAndShorts(10, 100, 40, 10)
    const concurrent = simulate(plan, { workers: 2 }).makespanMs
    expect(simulate(plan, { workers: 2, strategy: 'waves' }).makespanMs).toBeGreaterThanOrEqual(concurrent * 1.1)
  })

  it('runs one task at a time with the sequential strategy', () => {
    const plan = graph([[], [], []], [10, 20, 30])
    expect(simulate(plan, { workers: 4, strategy: 'sequential' }).makespanMs).toBe(60)
  })

  it('starts a task when its last dependency finishes', () => {
    const plan = graph([[], [], [0, 1]], [10, 30, 5])
    expect(Array.from(simulate(plan, { workers: 2 }).start)).toEqual([0, 0, 30])
  })

  it('uses the given durations rather than the estimates', () => {
    const plan = graph([[], [0]], [1, 1])
    expect(simulate(plan, { workers: 1, durations: Float64Array.of(5, 7) }).makespanMs).toBe(12)
  })

  it('schedules an empty plan in no time', () => {
    expect(simulate(graph([], []), { workers: 2 }).makespanMs).toBe(0)
  })

  it('rejects a worker count below 1', () => {
    expect(() => simulate(graph([[]], [1]), { workers: 0 })).toThrow(RangeError)
  })

  it('never violates precedence or capacity on random DAGs (every strategy)', () => {
    fc.assert(
      fc.property(randomDag, ({ deps, durations, workers, strategy }) => {
        const plan = graph(deps, durations)
        const d = Float64Array.from(durations)
        const { start, finish } = simulate(plan, { workers, strategy, durations: d })
        expect(validateSchedule(plan, d, start, finish, workers)).toEqual([])
      }),
      { numRuns: 300 },
    )
  })

  it('stays within max(CP, W/m) and Graham’s list-scheduling bound on random DAGs', () => {
    fc.assert(
      fc.property(randomDag, ({ deps, durations, workers }) => {
        const plan = graph(deps, durations)
        const d = Float64Array.from(durations)
        const { cp, work } = bounds(plan, d, workers)
        const { makespanMs } = simulate(plan, { workers, durations: d })
        expect(makespanMs).toBeGreaterThanOrEqual(Math.max(cp, work) - 1e-9)
        expect(makespanMs).toBeLessThanOrEqual(work + (1 - 1 / workers) * cp + 1e-9)
      }),
      { numRuns: 300 },
    )
  })
})

describe('validateSchedule', () => {
  const plan = graph([[], [0], []], [10, 10, 10])
  const d = Float64Array.of(10, 10, 10)

  it('accepts a valid schedule', () => {
    expect(validateSchedule(plan, d, Float64Array.of(0, 10, 0), Float64Array.of(10, 20, 10), 2)).toEqual([])
  })

  it('reports a task started before its dependency finished', () => {
    const violations = validateSchedule(plan, d, Float64Array.of(0, 5, 10), Float64Array.of(10, 15, 20), 2)
    expect(violations.map((v) => v.kind)).toEqual(['precedence'])
  })

  it('reports more tasks at once than workers', () => {
    const violations = validateSchedule(plan, d, Float64Array.of(0, 10, 0), Float64Array.of(10, 20, 10), 1)
    expect(violations.map((v) => v.kind)).toEqual(['capacity'])
  })

  it('reports a task that did not run for its duration', () => {
    const violations = validateSchedule(plan, d, Float64Array.of(0, 10, 0), Float64Array.of(10, 25, 10), 2)
    expect(violations.map((v) => v.kind)).toEqual(['duration'])
  })
})
