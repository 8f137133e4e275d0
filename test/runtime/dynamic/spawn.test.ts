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
  })
})
