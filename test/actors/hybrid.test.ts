import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { RunResult, TaskResult } from '../../src/runtime/report/result.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import type { Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { simulate } from '../../src/runtime/schedule/simulate.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
const sleep = (id: string, stage: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: join(agents, 'sleep.mjs'), stage, input: { ms: 40 }, ...extra })

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function run(plan: Plan): Promise<RunResult> {
  runtime = createRuntime({ config: { maxParallel: 4, pool: { minThreads: 4, maxThreads: 4 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
  return runtime.run(plan).result
}

/** Most of `results` whose [startedAt, finishedAt) intervals overlap at once. */
function peakOverlap(results: readonly TaskResult[]): number {
  const events = results.flatMap((r) => [
    [r.startedAt!, 1],
    [r.finishedAt!, -1],
  ]) as [number, number][]
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let now = 0
  let peak = 0
  for (const [, d] of events) peak = Math.max(peak, (now += d))
  return peak
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

describe('hybrid strategy', () => {
  const plan: Plan = {
    name: 'hybrid',
    strategy: 'hybrid',
    // Declared order, not order of first appearance: `one` runs first though its tasks come last.
    stages: { one: { parallel: false }, two: { parallel: true, maxParallel: 2 }, three: { parallel: true } },
    tasks: [...ids('b', 4).map((id) => sleep(id, 'two')), ...ids('c', 4).map((id) => sleep(id, 'three')), ...ids('a', 3).map((id) => sleep(id, 'one'))],
  }

  it('runs stages in declared order, each after the previous ended, with their parallel rules', async () => {
    const result = await run(plan)
    expect(result.status).toBe('completed')
    const of = (prefix: string, n: number) => ids(prefix, n).map((id) => result.tasks[id]!)
    const [one, two, three] = [of('a', 3), of('b', 4), of('c', 4)]
    expect(peakOverlap(one)).toBe(1)
    expect(peakOverlap(two)).toBeLessThanOrEqual(2)
    expect(peakOverlap(three)).toBeLessThanOrEqual(4)
    expect(Math.min(...two.map((r) => r.startedAt!))).toBeGreaterThanOrEqual(Math.max(...one.map((r) => r.finishedAt!)))
    expect(Math.min(...three.map((r) => r.startedAt!))).toBeGreaterThanOrEqual(Math.max(...two.map((r) => r.finishedAt!)))
  })

  it('the RunResult names the strategy as the plan did: hybrid (regression: it said "pipeline")', async () => {
    const result = await run({ ...plan, tasks: plan.tasks.slice(0, 1).map((t) => ({ ...t, stage: 'one' })) })
    expect(result.strategy).toBe('hybrid')
  })

  it('failFast: a failed task of the stage skips its later stages', async () => {
    const result = await run({
      name: 'ff',
      strategy: 'hybrid',
      stages: { one: { parallel: true, failFast: true }, two: { parallel: true } },
      tasks: [sleep('bad', 'one', { agent: join(agents, 'throw.mjs'), retries: 0 }), sleep('ok', 'one'), sleep('later', 'two')],
    })
    expect(result.tasks.ok!.state).toBe('COMPLETED')
    expect(result.tasks.later).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_DEPENDENCY_FAILED' } })
  })

  it('without failFast, later stages run what does not depend on the failure', async () => {
    const result = await run({
      name: 'no-ff',
      strategy: 'hybrid',
      stages: { one: { parallel: true }, two: { parallel: true } },
      tasks: [sleep('bad', 'one', { agent: join(agents, 'throw.mjs'), retries: 0 }), sleep('free', 'two'), sleep('tied', 'two', { dependsOn: ['bad'] })],
    })
    expect(result.tasks.free!.state).toBe('COMPLETED')
    expect(result.tasks.tied).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_DEPENDENCY_FAILED' } })
    expect(result.status).toBe('failed')
  })

  it('simulate() follows the stage rules: a parallel:false stage of 3 unit tasks takes 3, a maxParallel 2 stage of 4 takes 2', () => {
    const compiled = compilePlan(plan)
    const { makespanMs } = simulate(compiled, { workers: 4, strategy: compiled.strategy ?? 'concurrent', durations: new Float64Array(11).fill(1) })
    expect(makespanMs).toBe(3 + 2 + 1)
  })

  it('compiles as hybrid: the compiled plan names the strategy itself, not pipeline (regression: it compiled as pipeline)', () => {
    expect(compilePlan(plan).strategy).toBe('hybrid')
  })

  it('simulate() with strategy pipeline over the same plan keeps the stage barriers but drops the stage limits', () => {
    const { makespanMs } = simulate(compilePlan(plan), { workers: 4, strategy: 'pipeline', durations: new Float64Array(11).fill(1) })
    expect(makespanMs).toBe(1 + 1 + 1)
  })

  it('strategy pipeline given at run time over a hybrid plan runs a pipeline: every stage fails fast', async () => {
    const config = { maxParallel: 4, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } }
    runtime = createRuntime({ config })
    const noFailFast: Plan = {
      name: 'override',
      strategy: 'hybrid',
      stages: { one: { parallel: true }, two: { parallel: true } },
      tasks: [sleep('bad', 'one', { agent: join(agents, 'throw.mjs'), retries: 0 }), sleep('free', 'two')],
    }
    const result = await runtime.run(noFailFast, { strategy: 'pipeline' }).result
    expect([result.strategy, result.tasks.free!.state]).toEqual(['pipeline', 'SKIPPED'])
  })
})
