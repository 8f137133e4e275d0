import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TERMINAL_STATES } from '../../src/runtime/core/task-state.ts'
import { Dispatcher, type Dispatchable } from '../../src/runtime/admission/dispatcher.ts'
import { systemClock } from '../../src/runtime/core/clock.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import type { Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import { FAKE_AGENT, fakeRun, type FakeBehaviour } from '../helpers/fake-executor.ts'

/**
 * A model-based property test of the run engine (the real run machine, scheduler and gates on
 * a fake executor, no threads): random plans × strategies (hybrid stages included) × a named
 * limit × claims × journal on/off × `when` × spawn with and without wait × faults (fail,
 * timeout, cancel, budget). Every run terminates; every task ends exactly once; a cancelled
 * run ends cancelled. The P0 and P1 plans of issue 25 are its first, fixed cases.
 */

const STRATEGIES = ['concurrent', 'waves', 'sequential', 'pipeline', 'hybrid'] as const
type ModelStrategy = (typeof STRATEGIES)[number]

interface ModelTask {
  readonly deps: number[]
  readonly stage: number
  readonly uses: boolean
  readonly claim: string | undefined
  readonly when: 'true' | 'false' | undefined
  readonly fault: 'none' | 'fail' | 'hang'
  readonly ms: number
  readonly costUsd: number | undefined
  readonly spawn: { readonly children: number; readonly wait: boolean } | undefined
}

interface Model {
  readonly strategy: ModelStrategy
  readonly maxParallel: number
  readonly journal: boolean
  readonly maxConcurrent: number
  readonly budget: { readonly maxCostUsd: number; readonly onExceeded: 'pause' | 'fail' } | undefined
  /** Cancel the run after this many ms, if set. */
  readonly cancelAfterMs: number | undefined
  readonly tasks: readonly ModelTask[]
}

const taskArbitrary = (i: number): fc.Arbitrary<ModelTask> =>
  fc.record({
    deps: fc.subarray(Array.from({ length: i }, (_, j) => j), { maxLength: Math.min(3, i) }),
    stage: fc.nat({ max: 2 }),
    uses: fc.boolean(),
    claim: fc.option(fc.constantFrom('a.txt', './a.txt', 'dir', 'dir/x/../b.txt'), { nil: undefined }),
    when: fc.option(fc.constantFrom('true' as const, 'false' as const), { nil: undefined, freq: 4 }),
    fault: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'fail' as const, 'hang' as const),
    ms: fc.nat({ max: 3 }),
    costUsd: fc.option(fc.constantFrom(0.2, 0.5), { nil: undefined, freq: 3 }),
    spawn: fc.option(fc.record({ children: fc.integer({ min: 1, max: 3 }), wait: fc.boolean() }), { nil: undefined, freq: 3 }),
  })

const modelArbitrary: fc.Arbitrary<Model> = fc.integer({ min: 1, max: 9 }).chain((n) =>
  fc.record({
    strategy: fc.constantFrom(...STRATEGIES),
    maxParallel: fc.integer({ min: 1, max: 4 }),
    journal: fc.boolean(),
    maxConcurrent: fc.integer({ min: 1, max: 2 }),
    budget: fc.option(fc.record({ maxCostUsd: fc.constantFrom(0.3, 1), onExceeded: fc.constantFrom('pause' as const, 'fail' as const) }), { nil: undefined, freq: 3 }),
    cancelAfterMs: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined, freq: 4 }),
    tasks: fc.tuple(...Array.from({ length: n }, (_, i) => taskArbitrary(i))),
  }),
)

const STAGES = ['one', 'two', 'three']

function planOf(model: Model): Plan {
  const staged = model.strategy === 'pipeline' || model.strategy === 'hybrid'
  // A stage is never before a dependency's (that plan is invalid: the P1 fixed case).
  const stages: number[] = []
  // Pipeline numbers stages by first appearance: there, stages never go down along the task list.
  const floor = (i: number) => (model.strategy === 'pipeline' && i > 0 ? stages[i - 1]! : 0)
  model.tasks.forEach((t, i) => (stages[i] = Math.max(t.stage, floor(i), ...t.deps.map((d) => stages[d]!))))
  const tasks: TaskSpec[] = model.tasks.map((t, i) => {
    const behaviour: FakeBehaviour = {
      ms: t.ms,
      ...(t.fault === 'fail' ? { fail: true } : t.fault === 'hang' ? { hang: true } : {}),
      ...(t.costUsd === undefined ? {} : { costUsd: t.costUsd }),
      ...(t.spawn === undefined
        ? {}
        : { spawn: { wait: t.spawn.wait, tasks: Array.from({ length: t.spawn.children }, (_, k) => ({ id: `t${i}.${k}`, agent: FAKE_AGENT, input: { ms: 1 } })) } }),
    }
    return {
      id: `t${i}`,
      agent: FAKE_AGENT,
      input: behaviour,
      dependsOn: t.deps.map((d) => `t${d}`),
      retries: 1,
      ...(staged ? { stage: STAGES[stages[i]!]! } : {}),
      ...(t.uses ? { uses: ['api'] } : {}),
      ...(t.claim === undefined ? {} : { claims: [t.claim] }),
      ...(t.when === undefined || t.deps.length === 0 ? {} : { when: t.when }),
    } as TaskSpec
  })
  const strategy = model.strategy
  return {
    name: 'model',
    strategy,
    ...(strategy === 'hybrid' ? { stages: { one: { parallel: true }, two: { parallel: false }, three: { parallel: true, maxParallel: 2, failFast: true } } } : {}),
    tasks,
  } as Plan
}

/** A dispatcher that counts how often it asks runs to start a task. */
class CountingDispatcher extends Dispatcher {
  tries = 0
  readonly #wrapped = new Map<Dispatchable, Dispatchable>()
  override add(run: Dispatchable): void {
    const wrapper: Dispatchable = { tryStartOne: () => (this.tries++, run.tryStartOne()) }
    this.#wrapped.set(run, wrapper)
    super.add(wrapper)
  }
  override remove(run: Dispatchable): void {
    super.remove(this.#wrapped.get(run) ?? run)
    this.#wrapped.delete(run)
  }
}

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'troupe-model-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs the model; resolves with the result and the terminal transitions seen per task, or rejects if the run does not end in time. */
async function execute(model: Model): Promise<{ result: RunResult; ends: Map<string, number>; cancelled: boolean; tries: number; events: number }> {
  const dispatcher = new CountingDispatcher(Number.POSITIVE_INFINITY)
  const { run } = fakeRun(planOf(model), {
    dispatcher,
    clock: systemClock,
    maxParallel: model.maxParallel,
    config: {
      timeoutMs: 40,
      limits: { api: { maxConcurrent: model.maxConcurrent } },
      ...(model.budget === undefined ? {} : { budget: model.budget }),
    },
    ...(model.journal ? { journalDir: dir } : {}),
  })
  const ends = new Map<string, number>()
  let events = 0
  run.on('task:state', (e) => {
    events++
    if (TERMINAL_STATES.has(e.state)) ends.set(e.taskId, (ends.get(e.taskId) ?? 0) + 1)
  })
  let cancelled = false
  let settled = false
  if (model.cancelAfterMs !== undefined) {
    setTimeout(() => {
      if (settled) return
      // Cancelling a run still going (not already stopping, nor recording its end) must end it cancelled.
      cancelled = run.phase === 'running' || run.phase === 'paused'
      void run.cancel()
    }, model.cancelAfterMs)
  }
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    run.result,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`run did not end in 10 s: ${JSON.stringify(model)}`)), 10_000))),
  ])
  settled = true
  clearTimeout(timer)
  return { result, ends, cancelled, tries: dispatcher.tries, events }
}

/** The P0 plan of issue 25: two stages, the second's task uses a named limit, journal on. */
const P0 = (strategy: 'pipeline' | 'hybrid'): Model => ({
  strategy,
  maxParallel: 4,
  journal: true,
  maxConcurrent: 1,
  budget: undefined,
  cancelAfterMs: undefined,
  tasks: [
    { deps: [], stage: 0, uses: false, claim: undefined, when: undefined, fault: 'none', ms: 0, costUsd: undefined, spawn: undefined },
    { deps: [], stage: 1, uses: true, claim: undefined, when: undefined, fault: 'none', ms: 0, costUsd: undefined, spawn: undefined },
  ],
})

describe('model-based: any plan, strategy, limits, claims, journal, conditions, spawns and faults', () => {
  it('P1 (fixed case): a pipeline task depending on a later stage is rejected at validation', () => {
    const plan: Plan = {
      name: 'p1',
      strategy: 'pipeline',
      tasks: [
        { id: 'a', agent: FAKE_AGENT, stage: 'one', dependsOn: ['b'] },
        { id: 'b', agent: FAKE_AGENT, stage: 'two' },
      ],
    }
    expect(() => compilePlan(plan, { baseDir: dir })).toThrow(expect.objectContaining({ code: 'ERR_PLAN_INVALID' }))
  })

  it('every run terminates, every task ends exactly once, a cancelled run ends cancelled, no dispatch loop', async () => {
    await fc.assert(
      fc.asyncProperty(modelArbitrary, async (model) => {
        const { result, ends, cancelled, tries, events } = await execute(model)
        // No dispatch loop: the run is asked to start a task a bounded number of times per task event.
        expect(tries).toBeLessThanOrEqual(20 * (events + 1))
        for (const [id, task] of Object.entries(result.tasks)) {
          expect(TERMINAL_STATES.has(task.state), `${id} ended ${task.state}`).toBe(true)
          expect(ends.get(id) ?? 0, `${id} ended ${ends.get(id) ?? 0} times`).toBe(1)
        }
        if (cancelled) expect(result.status).toBe('cancelled')
        if (model.cancelAfterMs === undefined && model.budget === undefined && result.status === 'cancelled') throw new Error('cancelled without a cause')
      }),
      { numRuns: 120, examples: [[P0('pipeline')], [P0('hybrid')]] },
    )
  }, 60_000)
})
