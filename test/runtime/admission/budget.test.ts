import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { budgetAdmits, budgetLevel } from '../../../src/runtime/admission/budget.ts'
import type { TroupeConfig } from '../../../src/runtime/core/config.ts'
import type { BudgetExceededEvent, TaskStateEvent } from '../../../src/runtime/report/events.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const spend = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'spend.mjs')

describe('budgetLevel', () => {
  it('is open without a budget', () => {
    expect(budgetLevel(1e9, null)).toBe('open')
  })

  it('is critical-only from 90 % of the budget', () => {
    expect([budgetLevel(0.89, 1), budgetLevel(0.9, 1)]).toEqual(['open', 'critical-only'])
  })

  it('is exceeded once spend reaches the budget', () => {
    expect(budgetLevel(1, 1)).toBe('exceeded')
  })

  it('admits only critical tasks at critical-only, none at exceeded', () => {
    expect([budgetAdmits('critical-only', 'critical'), budgetAdmits('critical-only', 'high'), budgetAdmits('exceeded', 'critical')]).toEqual([true, false, false])
  })
})

let runtime: Runtime | undefined

afterEach(async () => {
  await runtime?.close()
  runtime = undefined
})

type Seen = { type: 'state'; event: TaskStateEvent } | { type: 'budget'; event: BudgetExceededEvent }

async function execute(plan: Plan, config: TroupeConfig) {
  runtime = createRuntime({ config: { checkpoint: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, ...config } })
  const run = runtime.run(plan)
  const seen: Seen[] = []
  run.on('task:state', (event) => seen.push({ type: 'state', event }))
  run.on('budget:exceeded', (event) => seen.push({ type: 'budget', event }))
  const result = await run.result
  return { result, seen }
}

const spenders = (n: number, costUsd: number, ms = 0): Plan => ({
  name: 'spenders',
  tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i + 1}`, agent: spend, input: { usage: { costUsd }, ms } })),
})

describe('budget.maxCostUsd with onExceeded "pause"', () => {
  it('settles the run paused with ERR_BUDGET_EXCEEDED, every task not started CANCELLED with that code (regression: status cancelled, tasks without a code)', async () => {
    const { result } = await execute(spenders(5, 0.4), { maxParallel: 1, budget: { maxCostUsd: 1 } })
    expect(result.status).toBe('paused')
    expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
    expect(Object.values(result.tasks).map((t) => t.state)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'CANCELLED', 'CANCELLED'])
    expect([result.tasks.t4!.error?.code, result.tasks.t5!.error?.code]).toEqual(['ERR_BUDGET_EXCEEDED', 'ERR_BUDGET_EXCEEDED'])
  })

  it('never-started tasks waiting on dependencies also get the code (regression: PENDING tasks were CANCELLED with none)', async () => {
    const { result } = await execute(
      {
        name: 'chain',
        tasks: [
          { id: 'a', agent: spend, input: { usage: { costUsd: 2 } } },
          { id: 'b', agent: spend, dependsOn: ['a'] },
          { id: 'c', agent: spend, dependsOn: ['b'] },
        ],
      },
      { maxParallel: 1, budget: { maxCostUsd: 1 } },
    )
    expect(result.status).toBe('paused')
    expect([result.tasks.b!.error?.code, result.tasks.c!.error?.code]).toEqual(['ERR_BUDGET_EXCEEDED', 'ERR_BUDGET_EXCEEDED'])
  })

  it('run.setBudget() with a larger budget while paused continues the run to completion', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, maxParallel: 2 } })
    const run = runtime.run(
      {
        name: 'raise',
        tasks: [
          { id: 'spender', agent: spend, input: { usage: { costUsd: 2 } } },
          { id: 'slow', agent: spend, input: { ms: 400 } },
          { id: 'later', agent: spend, dependsOn: ['spender'] },
        ],
      },
      {},
    )
    run.setBudget(1)
    let phase: string | undefined
    run.on('budget:exceeded', () =>
      queueMicrotask(() => {
        // Paused now: `slow` still runs, `later` waits; raising the budget lets it start.
        phase = run.phase
        run.setBudget(10)
      }),
    )
    const result = await run.result
    expect(phase).toBe('paused')
    expect(result.status).toBe('completed')
    expect(result.tasks.later!.state).toBe('COMPLETED')
  })

  it('run.setBudget() refuses a budget that is not a positive number or null', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, governor: { enabled: false } } })
    const run = runtime.run({ name: 'x', tasks: [{ id: 'a', agent: spend }] })
    expect(() => run.setBudget(-1)).toThrow(expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }))
    await run.result
  })

  it('cancel() while paused ends the run cancelled', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, maxParallel: 2, budget: { maxCostUsd: 1 } } })
    const run = runtime.run({
      name: 'cancel-paused',
      tasks: [
        { id: 'spender', agent: spend, input: { usage: { costUsd: 2 } } },
        { id: 'slow', agent: spend, input: { ms: 5000 } },
      ],
    })
    run.on('budget:exceeded', () => queueMicrotask(() => void run.cancel()))
    const result = await run.result
    expect(result.status).toBe('cancelled')
  })

  it('starts no task after the budget is crossed', async () => {
    const { seen } = await execute(spenders(8, 0.3, 20), { maxParallel: 2, budget: { maxCostUsd: 1 } })
    const crossing = seen.findIndex((s) => s.type === 'budget')
    expect(crossing).toBeGreaterThan(-1)
    const startsAfter = seen.slice(crossing).filter((s) => s.type === 'state' && s.event.state === 'RUNNING')
    expect(startsAfter).toEqual([])
  })

  it('lets tasks already running finish', async () => {
    const { result } = await execute(
      {
        name: 'pause',
        tasks: [
          { id: 'spender', agent: spend, input: { usage: { costUsd: 2 } } },
          { id: 'slow', agent: spend, input: { ms: 300 } },
        ],
      },
      { maxParallel: 2, budget: { maxCostUsd: 1 } },
    )
    expect(result.tasks.slow!.state).toBe('COMPLETED')
  })

  it('reports the crossing in a budget:exceeded event', async () => {
    const { seen } = await execute(spenders(3, 0.6), { maxParallel: 1, budget: { maxCostUsd: 1 } })
    const event = seen.find((s) => s.type === 'budget')?.event as BudgetExceededEvent
    expect(event).toMatchObject({ spentUsd: 1.2, maxCostUsd: 1, onExceeded: 'pause', taskId: 't2' })
  })
})

describe('budget.maxCostUsd with onExceeded "fail"', () => {
  it('also cancels running tasks and fails the run', async () => {
    const { result } = await execute(
      {
        name: 'fail',
        tasks: [
          { id: 'spender', agent: spend, input: { usage: { costUsd: 2 }, ms: 50 } },
          { id: 'slow', agent: spend, input: { ms: 5000 } },
        ],
      },
      { maxParallel: 2, budget: { maxCostUsd: 1, onExceeded: 'fail' } },
    )
    expect(result.status).toBe('failed')
    expect(result.tasks.slow).toMatchObject({ state: 'CANCELLED', error: { code: 'ERR_BUDGET_EXCEEDED' } })
  })
})

describe('above 90 % of the budget', () => {
  it('starts only critical tasks, then ends the run when only others are left', async () => {
    const { result } = await execute(
      {
        name: 'near',
        tasks: [
          { id: 'first', agent: spend, input: { usage: { costUsd: 0.95 } } },
          { id: 'ordinary', agent: spend, dependsOn: ['first'], priority: 'medium' },
          { id: 'vital', agent: spend, dependsOn: ['first'], priority: 'critical' },
        ],
      },
      { maxParallel: 2, budget: { maxCostUsd: 1 } },
    )
    expect(result.tasks.vital!.state).toBe('COMPLETED')
    expect(result.tasks.ordinary).toMatchObject({ state: 'CANCELLED', error: { code: 'ERR_BUDGET_EXCEEDED' } })
    expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
    expect(result.status).toBe('paused')
  })
})

describe('a run that ends above 90 % of its budget', () => {
  it('is completed when every task completed', async () => {
    const { result } = await execute(
      {
        name: 'near-done',
        tasks: [
          { id: 'first', agent: spend, input: { usage: { costUsd: 0.5 } } },
          { id: 'last', agent: spend, input: { usage: { costUsd: 0.45 } }, dependsOn: ['first'] },
        ],
      },
      { maxParallel: 1, budget: { maxCostUsd: 1 } },
    )
    expect(result.status).toBe('completed')
    expect(result.error).toBeUndefined()
  })
})

describe('usage and models', () => {
  const plan: Plan = {
    name: 'models',
    agents: { writer: spend, reviewer: spend },
    tasks: [
      { id: 'w1', agent: 'writer', input: { usage: { costUsd: 0.25, tokens: 1000, apiCalls: 1 } } },
      { id: 'w2', agent: 'writer', input: { reports: [{ costUsd: 0.5, tokens: 10 }, { apiCalls: 2 }] } },
      { id: 'r1', agent: 'reviewer', input: { usage: { costUsd: 0.125, tokens: 5, model: 'big-model' } } },
    ],
  }

  it('gives each agent its model from config.models as ctx.model', async () => {
    const { result } = await execute(plan, { models: { writer: 'small-model' } })
    expect([result.tasks.w1!.output, result.tasks.r1!.output]).toEqual([{ model: 'small-model' }, { model: undefined }])
  })

  it('totals usage per run, per agent and per model', async () => {
    const { result } = await execute(plan, { models: { writer: 'small-model' } })
    expect(result.usage).toEqual({
      total: { costUsd: 0.875, tokens: 1015, apiCalls: 3 },
      byAgent: { writer: { costUsd: 0.75, tokens: 1010, apiCalls: 3 }, reviewer: { costUsd: 0.125, tokens: 5, apiCalls: 0 } },
      byModel: { 'small-model': { costUsd: 0.75, tokens: 1010, apiCalls: 3 }, 'big-model': { costUsd: 0.125, tokens: 5, apiCalls: 0 } },
    })
  })

  it('fails the task whose agent reports a negative cost', async () => {
    const { result } = await execute({ name: 'bad', tasks: [{ id: 'a', agent: spend, input: { usage: { costUsd: -1 } } }] }, {})
    expect(result.tasks.a!.error?.code).toBe('ERR_TASK_FAILED')
    expect(result.tasks.a!.error?.message).toContain('costUsd')
  })
})

describe('a paused run resumed with a larger budget', () => {
  it('reuses what completed and runs what the pause left (journal on)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-budget-resume-'))
    const plan: Plan = spenders(4, 0.6)
    const config = (maxCostUsd: number) => ({ checkpoint: { dir }, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, maxParallel: 1, budget: { maxCostUsd } })
    try {
      runtime = createRuntime({ config: config(1) })
      const paused = await runtime.run(plan, { runId: 'over-budget' }).result
      await runtime.close()
      expect(paused.status).toBe('paused')
      runtime = createRuntime({ config: config(10) })
      const resumed = await runtime.run(plan, { runId: 'over-budget' }).result
      expect(resumed.status).toBe('completed')
      expect(resumed.totals.reused).toBe(paused.totals.completed)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
