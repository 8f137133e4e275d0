import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agents = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')

let runtime: Runtime
let result: RunResult

beforeAll(async () => {
  runtime = createRuntime({
    config: { checkpoint: { enabled: false }, maxParallel: 3, pool: { minThreads: 2, maxThreads: 3 }, governor: { enabled: false, memory: { perAgentMb: 64 } } },
  })
  result = await runtime.run({
    name: 'hog-and-siblings',
    tasks: [
      { id: 'hog', agent: join(agents, 'oom.mjs') },
      { id: 'sibling-1', agent: join(agents, 'sleep.mjs'), input: { ms: 300 } },
      { id: 'sibling-2', agent: join(agents, 'sleep.mjs'), input: { ms: 300 } },
    ],
  }).result
})

afterAll(async () => {
  await runtime.close()
})

describe('an agent allocating far beyond governor.memory.perAgentMb', () => {
  it('fails with ERR_WORKER_OOM', () => {
    expect(result.tasks.hog).toMatchObject({ state: 'FAILED', error: { code: 'ERR_WORKER_OOM' } })
  })

  it('leaves the tasks running beside it to complete', () => {
    expect([result.tasks['sibling-1']!.state, result.tasks['sibling-2']!.state]).toEqual(['COMPLETED', 'COMPLETED'])
  })

  it('leaves the pool able to run the next run on every slot', async () => {
    const next = await runtime.run({
      name: 'after',
      tasks: ['a', 'b', 'c'].map((id) => ({ id, agent: join(agents, 'echo.mjs'), input: id })),
    }).result
    expect(next.totals.completed).toBe(3)
  })
})
