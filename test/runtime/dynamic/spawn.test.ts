import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agents = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')
const AGENTS = { spawn: join(agents, 'spawn.mjs'), sleep: join(agents, 'sleep.mjs'), echo: join(agents, 'echo.mjs'), noop: join(agents, 'noop.mjs') }

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, retry: { maxRetries: 0 } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

const children = (n: number, prefix = 'child', ms = 20) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, agent: 'sleep', input: { ms } }))

describe('ctx.spawn: tasks added at run time', () => {
  it('adds the children to the run: they run, and appear in the RunResult with their parent', async () => {
    const plan: Plan = { name: 'fan', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', input: { children: children(3) } }] }
    const result = await runtime.run(plan, { maxParallel: 2 }).result
    expect(result.status).toBe('completed')
    expect(result.tasks.lead!.output).toEqual({ added: ['child-0', 'child-1', 'child-2'] })
    expect(result.totals.tasks).toBe(4)
    expect(result.tasks['child-2']).toMatchObject({ state: 'COMPLETED', added: true, parent: 'lead', output: { taskId: 'child-2' } })
  })

  it('with wait, resolves to the children outputs by id', async () => {
    const plan: Plan = { name: 'wait', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', input: { wait: true, children: children(2) } }] }
    const result = await runtime.run(plan, { maxParallel: 2 }).result
    expect(result.tasks.lead!.output).toEqual({ outputs: { 'child-0': { taskId: 'child-0' }, 'child-1': { taskId: 'child-1' } } })
  })

  it('50 children waited for at maxParallel 2, every slot a waiting parent: completes, no deadlock', async () => {
    const plan: Plan = {
      name: 'parents',
      agents: AGENTS,
      tasks: [
        { id: 'p1', agent: 'spawn', input: { wait: true, children: children(25, 'a', 5) } },
        { id: 'p2', agent: 'spawn', input: { wait: true, children: children(25, 'b', 5) } },
      ],
    }
    const run = runtime.run(plan, { maxParallel: 2 })
    let running = 0
    let peak = 0
    run.on('task:state', (e) => {
      if (e.state === 'RUNNING') peak = Math.max(peak, ++running)
      else if (e.previous === 'RUNNING') running--
    })
    const result = await run.result
    expect(result.status).toBe('completed')
    expect(result.totals).toMatchObject({ tasks: 52, completed: 52 })
    expect(Object.keys((result.tasks.p1!.output as { outputs: object }).outputs)).toHaveLength(25)
    // While both parents waited, their slots ran children: two at a time, never more.
    const spans = Object.entries(result.tasks).filter(([id]) => id !== 'p1' && id !== 'p2').map(([, t]) => [t.startedAt!, t.finishedAt!] as const)
    const overlap = Math.max(...spans.map(([start]) => spans.filter(([s, f]) => s <= start && start < f).length))
    expect(overlap).toBe(2)
    // Waiting is not work: the parents count neither in the peak nor in the sequential time.
    expect(result.peakConcurrency).toBe(2)
    expect(result.tasks.p1!.waitedMs).toBeGreaterThan(0)
    expect(result.sequentialMs).toBeLessThan(Object.values(result.tasks).reduce((sum, t) => sum + t.durationMs!, 0))
  })

  it('nested orchestrators at maxParallel 1: a parent spawns parents that spawn and wait, and all complete', async () => {
    const sub = (n: number) => ({ id: `sub-${n}`, agent: 'spawn', input: { wait: true, throwOnRefusal: true, children: children(3, `leaf-${n}`, 5) } })
    const plan: Plan = { name: 'nested', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', input: { wait: true, throwOnRefusal: true, children: [sub(0), sub(1)] } }] }
    const result = await runtime.run(plan, { maxParallel: 1 }).result
    expect(result.status).toBe('completed')
    expect(result.totals.tasks).toBe(9)
    expect(result.tasks['leaf-1-2']).toMatchObject({ state: 'COMPLETED', parent: 'sub-1' })
    expect(result.tasks.lead!.output).toMatchObject({ outputs: { 'sub-0': { outputs: { 'leaf-0-0': { taskId: 'leaf-0-0' } } } } })
    expect(result.peakConcurrency).toBe(1)
  })

  it('a child that fails: the waiting parent gets ERR_DEPENDENCY_FAILED naming it', async () => {
    const plan: Plan = {
      name: 'failing-child',
      agents: { ...AGENTS, throw: join(agents, 'throw.mjs') },
      tasks: [{ id: 'lead', agent: 'spawn', input: { wait: true, children: [...children(1), { id: 'bad', agent: 'throw' }] } }],
    }
    const result = await runtime.run(plan).result
    expect(result.tasks.lead!.output).toMatchObject({ error: { code: 'ERR_DEPENDENCY_FAILED', name: 'TroupeError' } })
    expect((result.tasks.lead!.output as { error: { message: string } }).error.message).toContain('"bad" (FAILED')
  })

  it('a child may depend on a task of the plan that completed: it runs, and sees its output', async () => {
    const plan: Plan = {
      name: 'deps',
      agents: AGENTS,
      tasks: [
        { id: 'first', agent: 'sleep', input: { ms: 1 } },
        { id: 'lead', agent: 'spawn', dependsOn: ['first'], input: { wait: true, children: [{ id: 'echo', agent: 'echo', dependsOn: ['first'], input: 1 }] } },
      ],
    }
    const result = await runtime.run(plan).result
    expect(result.status).toBe('completed')
    expect(result.tasks.echo!.state).toBe('COMPLETED')
  })
})

describe('a waiting parent that ends while it waits', () => {
  it('times out: the parent fails with ERR_TASK_TIMEOUT, its children still run, the run ends', async () => {
    const plan: Plan = { name: 'timed-out-parent', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', timeoutMs: 300, retries: 0, input: { wait: true, children: children(2, 'slow', 1_000) } }] }
    const result = await runtime.run(plan, { maxParallel: 1 }).result
    expect(result.tasks.lead).toMatchObject({ state: 'FAILED', error: { code: 'ERR_TASK_TIMEOUT' } })
    expect(result.tasks['slow-1']!.state).toBe('COMPLETED')
  })

  it('is cancelled with its run: every task ends CANCELLED or COMPLETED, and the pool takes new work after', async () => {
    const plan: Plan = { name: 'cancelled-parent', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', input: { wait: true, children: children(4, 'long', 5_000) } }] }
    const run = runtime.run(plan, { maxParallel: 2 })
    await new Promise<void>((resolve) => run.on('task:state', (e) => e.taskId === 'long-1' && e.state === 'RUNNING' && resolve()))
    const result = await run.cancel()
    expect(result.status).toBe('cancelled')
    expect(Object.values(result.tasks).every((t) => t.state === 'CANCELLED')).toBe(true)
    const after = await runtime.run({ name: 'after', agents: AGENTS, tasks: [{ id: 'a', agent: 'noop' }] }).result
    expect(after.status).toBe('completed')
  })
})

describe('invalid additions fail the call with the plan error code, and add nothing', () => {
  const refused = async (childrenSpec: unknown, extra: Record<string, unknown> = {}) => {
    const plan: Plan = { name: 'refused', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', input: { children: childrenSpec, ...extra } }, { id: 'other', agent: 'noop' }] }
    const result = await runtime.run(plan).result
    return { result, error: (result.tasks.lead!.output as { error: { code: string; message: string } }).error }
  }

  it('a duplicate id (of a plan task): ERR_PLAN_DUPLICATE_ID', async () => {
    const { result, error } = await refused([...children(2), { id: 'other', agent: 'noop' }])
    expect(error.code).toBe('ERR_PLAN_DUPLICATE_ID')
    expect(error.message).toContain('"other"')
    expect(result.totals.tasks).toBe(2)
  })

  it('an unknown dependency: ERR_PLAN_UNKNOWN_DEPENDENCY with a suggestion', async () => {
    const { result, error } = await refused([{ id: 'x', agent: 'noop', dependsOn: ['othr'] }])
    expect(error.code).toBe('ERR_PLAN_UNKNOWN_DEPENDENCY')
    expect(error.message).toContain('did you mean "other"')
    expect(result.totals.tasks).toBe(2)
  })

  it('a cycle among the new tasks: ERR_PLAN_CYCLE naming it', async () => {
    const { error } = await refused([
      { id: 'x', agent: 'noop', dependsOn: ['y'] },
      { id: 'y', agent: 'noop', dependsOn: ['x'] },
    ])
    expect(error.code).toBe('ERR_PLAN_CYCLE')
    expect(error.message).toMatch(/x → y → x|y → x → y/)
  })

  it('a child of a waiting parent that depends on the parent: ERR_PLAN_CYCLE', async () => {
    const { error } = await refused([{ id: 'x', agent: 'noop', dependsOn: ['lead'] }], { wait: true })
    expect(error.code).toBe('ERR_PLAN_CYCLE')
    expect(error.message).toContain('"lead" waits for its children')
  })

  it('an invalid field: ERR_PLAN_INVALID naming the field and the value', async () => {
    const { error } = await refused([{ id: 'x', agent: 'noop', retries: -1 }])
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('tasks[0] ("x").retries')
  })

  it('an unknown agent: ERR_PLAN_UNKNOWN_AGENT', async () => {
    const { error } = await refused([{ id: 'x', agent: './missing-agent.mjs' }])
    expect(error.code).toBe('ERR_PLAN_UNKNOWN_AGENT')
  })

  it('not an array: ERR_PLAN_INVALID', async () => {
    const { error } = await refused('three tasks')
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('expected a non-empty array')
  })
})

describe('Run.addTasks', () => {
  it('adds tasks from outside the run; an identical second call adds nothing new', async () => {
    const plan: Plan = { name: 'outside', agents: AGENTS, tasks: [{ id: 'slow', agent: 'sleep', input: { ms: 300 } }] }
    const run = runtime.run(plan)
    const added: string[] = []
    run.on('task:added', (e) => added.push(e.taskId))
    expect(run.addTasks([{ id: 'late', agent: 'echo', input: 'hi', dependsOn: ['slow'] }])).toEqual(['late'])
    expect(run.addTasks([{ id: 'late', agent: 'echo', input: 'hi', dependsOn: ['slow'] }])).toEqual(['late'])
    const result = await run.result
    expect(added).toEqual(['late'])
    expect(result.tasks.late).toMatchObject({ state: 'COMPLETED', added: true })
    expect(result.tasks.late!.parent).toBeUndefined()
  })

  it('once the run is over: ERR_ARGUMENT_INVALID', async () => {
    const run = runtime.run({ name: 'over', agents: AGENTS, tasks: [{ id: 'a', agent: 'noop' }] })
    await run.result
    expect(() => run.addTasks([{ id: 'b', agent: 'noop' }])).toThrowError(expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }))
  })

  it('a task added after a failed dependency is skipped at once with ERR_DEPENDENCY_FAILED', async () => {
    const plan: Plan = {
      name: 'after-failure',
      agents: { ...AGENTS, throw: join(agents, 'throw.mjs') },
      tasks: [{ id: 'bad', agent: 'throw' }, { id: 'slow', agent: 'sleep', input: { ms: 300 } }],
    }
    const run = runtime.run(plan)
    await new Promise<void>((resolve) => run.on('task:state', (e) => e.taskId === 'bad' && e.state === 'FAILED' && resolve()))
    run.addTasks([{ id: 'late', agent: 'noop', dependsOn: ['bad'] }])
    const result = await run.result
    expect(result.tasks.late).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_DEPENDENCY_FAILED' } })
  })
})

describe('barrier strategies', () => {
  it('pipeline: a child joins its parent\'s stage, and the next stage waits for it', async () => {
    const plan: Plan = {
      name: 'pipe',
      strategy: 'pipeline',
      agents: AGENTS,
      tasks: [
        { id: 'lead', agent: 'spawn', stage: 'build', input: { children: [{ id: 'child', agent: 'sleep', input: { ms: 200 } }] } },
        { id: 'test', agent: 'noop', stage: 'test' },
      ],
    }
    const result = await runtime.run(plan).result
    expect(result.status).toBe('completed')
    expect(result.tasks.test!.startedAt!).toBeGreaterThanOrEqual(result.tasks.child!.finishedAt!)
  })

  it('a child naming another stage: ERR_PLAN_INVALID', async () => {
    const plan: Plan = {
      name: 'pipe-bad',
      strategy: 'pipeline',
      agents: AGENTS,
      tasks: [
        { id: 'lead', agent: 'spawn', stage: 'build', input: { children: [{ id: 'child', agent: 'noop', stage: 'test' }] } },
        { id: 'test', agent: 'noop', stage: 'test' },
      ],
    }
    const result = await runtime.run(plan).result
    expect(result.tasks.lead!.output).toMatchObject({ error: { code: 'ERR_PLAN_INVALID' } })
  })
})

describe('add_tasks over MCP (stand-in claude, a real MCP client)', () => {
  // Stand-in: test/fixtures/bin/claude, for an `add <agent> <n>` prompt, calls the `add_tasks` tool.
  const claude = join(import.meta.dirname, '..', '..', 'fixtures', 'bin', 'claude')

  it('a CLI agent adds tasks to its run: they run, with the agent as their parent', async () => {
    const plan: Plan = {
      name: 'cli-adds',
      agents: { lead: { kind: 'claude-code', bin: claude }, worker: { kind: 'claude-code', bin: claude } },
      tasks: [{ id: 'lead', agent: 'lead', input: { prompt: 'add worker 3' } }],
    }
    const result = await runtime.run(plan).result
    expect(result.status).toBe('completed')
    expect(result.tasks.lead!.output).toMatchObject({ text: JSON.stringify({ added: ['lead-sub-0', 'lead-sub-1', 'lead-sub-2'] }) })
    expect(result.tasks['lead-sub-2']).toMatchObject({ state: 'COMPLETED', parent: 'lead' })
  })

  it('an invalid addition is refused with the plan error code in the tool error, and adds nothing', async () => {
    const plan: Plan = {
      name: 'cli-refused',
      agents: { lead: { kind: 'claude-code', bin: claude } },
      tasks: [{ id: 'lead', agent: 'lead', retries: 0, input: { prompt: 'add nobody 2' } }],
    }
    const result = await runtime.run(plan).result
    expect(result.tasks.lead!.state).toBe('FAILED')
    expect(result.tasks.lead!.error!.message).toContain('ERR_PLAN_UNKNOWN_AGENT')
    expect(result.totals.tasks).toBe(1)
  })
})

describe('added tasks obey the run', () => {
  it("a named limit: spawned tasks that use it never run more at once than it allows", async () => {
    const limited = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, limits: { api: { maxConcurrent: 1 } } } })
    try {
      const kids = children(4, 'api', 60).map((t) => ({ ...t, uses: ['api'] }))
      const result = await limited.run({ name: 'limited', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', input: { wait: true, children: kids } }] }, { maxParallel: 4 }).result
      expect(result.status).toBe('completed')
      const spans = kids.map((t) => [result.tasks[t.id]!.startedAt!, result.tasks[t.id]!.finishedAt!] as const)
      expect(Math.max(...spans.map(([start]) => spans.filter(([s, f]) => s <= start && start < f).length))).toBe(1)
    } finally {
      await limited.close({ force: true })
    }
  })

  it('a waiting parent lends its claims to its children, not to others (regression: a child claiming its parent\'s files hung the run)', async () => {
    const kids = [
      { id: 'edit-a', agent: 'sleep', claims: ['src/a.ts'], input: { ms: 50 } },
      { id: 'edit-b', agent: 'sleep', claims: ['src/b.ts'], input: { ms: 50 } },
    ]
    const plan: Plan = {
      name: 'lent-claims',
      agents: AGENTS,
      tasks: [
        { id: 'lead', agent: 'spawn', claims: ['src/**'], input: { wait: true, throwOnRefusal: true, children: kids } },
        { id: 'outsider', agent: 'sleep', claims: ['src/c.ts'], input: { ms: 1 } },
      ],
    }
    const result = await runtime.run(plan, { maxParallel: 3 }).result
    expect(result.status).toBe('completed')
    expect(result.tasks.outsider!.startedAt!).toBeGreaterThanOrEqual(result.tasks.lead!.finishedAt!)
  })

  it('a waiting parent gives back its named-limit units (regression: children using its only unit hung the run)', async () => {
    const limited = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, limits: { llm: { maxConcurrent: 1 } } } })
    try {
      const kids = children(3, 'call', 20).map((t) => ({ ...t, uses: ['llm'] }))
      const plan: Plan = { name: 'lent-limit', agents: AGENTS, tasks: [{ id: 'lead', agent: 'spawn', uses: ['llm'], input: { wait: true, throwOnRefusal: true, children: kids } }] }
      const result = await limited.run(plan, { maxParallel: 4 }).result
      expect(result.status).toBe('completed')
      expect(result.totals.completed).toBe(4)
    } finally {
      await limited.close({ force: true })
    }
  })

  it('the budget: once spent, spawned tasks of normal priority are not started', async () => {
    const spend = join(agents, 'spend.mjs')
    const budgeted = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, budget: { maxCostUsd: 1 } } })
    try {
      const kids = Array.from({ length: 3 }, (_, i) => ({ id: `spender-${i}`, agent: 'spend', input: { usage: { costUsd: 2 } } }))
      const result = await budgeted.run({ name: 'budget', agents: { ...AGENTS, spend }, tasks: [{ id: 'lead', agent: 'spawn', input: { children: kids } }] }, { maxParallel: 1 }).result
      expect(result.status).not.toBe('completed')
      expect(Object.values(result.tasks).filter((t) => t.state === 'COMPLETED' && t.added)).toHaveLength(1)
    } finally {
      await budgeted.close({ force: true })
    }
  })
})
