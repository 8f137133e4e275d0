import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan, TaskSpec } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agent = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'agents', name)
const task = (id: string, name: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent(name), ...extra })

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({
    config: {
      maxParallel: 4,
      pool: { minThreads: 1, maxThreads: 4 },
      cancelGraceMs: 100,
      governor: { enabled: false, memory: { perAgentMb: 64 } },
      checkpoint: { enabled: false },
    },
  })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

describe('a task stuck in an infinite loop', () => {
  it('fails with ERR_TASK_TIMEOUT while its siblings complete', async () => {
    const plan: Plan = {
      name: 'loop',
      tasks: [
        task('stuck', 'loop.mjs', { timeoutMs: 300 }),
        task('a', 'sleep.mjs', { input: { ms: 50 } }),
        task('b', 'sleep.mjs', { input: { ms: 50 } }),
        task('after-a', 'echo.mjs', { dependsOn: ['a'] }),
      ],
    }
    const result = await runtime.run(plan).result
    expect(result.tasks.stuck).toMatchObject({ state: 'FAILED', attempts: 1, error: { code: 'ERR_TASK_TIMEOUT' } })
    expect([result.tasks.a!.state, result.tasks.b!.state, result.tasks['after-a']!.state]).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED'])
  })

  it('has its worker thread terminated, so the pool keeps serving', async () => {
    const stuck = await runtime.run({ name: 'loops', tasks: [1, 2, 3, 4].map((n) => task(`stuck-${n}`, 'loop.mjs', { timeoutMs: 200 })) }).result
    expect(stuck.totals.failed).toBe(4)
    // Had the looping threads survived, all four slots would still be busy and this would hang.
    const after = await runtime.run({ name: 'after', tasks: [task('x', 'echo.mjs'), task('y', 'echo.mjs')] }).result
    expect(after.status).toBe('completed')
  })
})

describe('each fault fails only its own task, with its own code', () => {
  const faults: [string, string, Partial<TaskSpec>, string][] = [
    ['throws', 'throw.mjs', {}, 'ERR_TASK_FAILED'],
    ['exits', 'exit.mjs', { input: { code: 3 } }, 'ERR_WORKER_EXIT'],
    ['throws from a callback', 'uncaught.mjs', {}, 'ERR_WORKER_CRASH'],
    ['runs out of memory', 'oom.mjs', {}, 'ERR_WORKER_OOM'],
    ['returns a function', 'return-function.mjs', {}, 'ERR_OUTPUT_NOT_CLONEABLE'],
    // Regression: an output nested 2,000 levels deep overflowed the stack as piscina posted it, and the attempt never answered.
    ['returns an output nested 2,000 levels deep', 'deep-output.mjs', {}, 'ERR_OUTPUT_NOT_CLONEABLE'],
  ]

  for (const [what, file, extra, code] of faults) {
    it(`an agent that ${what}: ${code}, siblings and later runs unaffected`, async () => {
      const plan: Plan = {
        name: 'fault',
        tasks: [
          task('bad', file, extra),
          task('dependent', 'echo.mjs', { dependsOn: ['bad'] }),
          task('sibling', 'sleep.mjs', { input: { ms: 20 } }),
          task('sibling-child', 'echo.mjs', { dependsOn: ['sibling'] }),
        ],
      }
      const result = await runtime.run(plan).result
      expect(result.tasks.bad).toMatchObject({ state: 'FAILED', error: { code } })
      expect(result.tasks.dependent).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_DEPENDENCY_FAILED' } })
      expect(result.tasks.sibling!.state).toBe('COMPLETED')
      expect(result.tasks['sibling-child']!.state).toBe('COMPLETED')
      expect(result.totals).toEqual({ tasks: 4, completed: 2, failed: 1, skipped: 1, cancelled: 0, reused: 0, cached: 0 })
    })
  }
})

describe('supervision (restart intensity)', () => {
  it('fails the run fast with ERR_CRASH_LOOP when workers keep dying', async () => {
    const crashing = createRuntime({
      config: {
        maxParallel: 2,
        pool: { minThreads: 1, maxThreads: 2 },
        retry: { maxRetries: 10, delayMs: 0 },
        supervision: { maxRestarts: 2, periodMs: 60_000 },
        governor: { enabled: false },
        checkpoint: { enabled: false },
      },
    })
    try {
      const plan: Plan = {
        name: 'crash-loop',
        tasks: [task('crasher', 'exit.mjs'), task('later', 'sleep.mjs', { input: { ms: 10 }, dependsOn: ['crasher'] }), task('other', 'sleep.mjs', { input: { ms: 20_000 } })],
      }
      const result = await crashing.run(plan).result
      expect(result.status).toBe('failed')
      expect(result.error?.code).toBe('ERR_CRASH_LOOP')
      // Three crashes (one over the intensity of 2), not the eleven attempts retries allow.
      expect(result.tasks.crasher!.attempts).toBe(3)
      expect(result.tasks.crasher!.state).not.toBe('COMPLETED')
      expect(result.tasks.other).toMatchObject({ state: 'CANCELLED', error: { code: 'ERR_CRASH_LOOP' } })
      expect(result.totals.completed + result.totals.failed + result.totals.skipped + result.totals.cancelled).toBe(3)
    } finally {
      await crashing.close({ force: true })
    }
  })

  it('does not count failures that leave the worker alive', async () => {
    const strict = createRuntime({
      config: {
        maxParallel: 2,
        pool: { minThreads: 1, maxThreads: 2 },
        supervision: { maxRestarts: 0, periodMs: 60_000 },
        governor: { enabled: false },
        checkpoint: { enabled: false },
      },
    })
    try {
      const result = await strict.run({ name: 'throws', tasks: [task('t1', 'throw.mjs'), task('t2', 'throw.mjs'), task('ok', 'echo.mjs')] }).result
      expect(result.error).toBeUndefined()
      expect(result.tasks.ok!.state).toBe('COMPLETED')
    } finally {
      await strict.close({ force: true })
    }
  })
})
