import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TaskSpec } from '../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'

const agent = (name: string) => join(import.meta.dirname, '..', 'fixtures', 'agents', name)
const task = (id: string, name: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent(name), ...extra })

function makeRuntime(extra: { retry?: { delayMs: number } } = {}): Runtime {
  return createRuntime({
    config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, cancelGraceMs: 100, governor: { enabled: false }, checkpoint: { enabled: false }, ...extra },
  })
}

const whenRunning = (run: ReturnType<Runtime['run']>, taskId: string) =>
  new Promise<void>((resolve) => run.on('task:state', (e) => e.taskId === taskId && e.state === 'RUNNING' && resolve()))

describe('runtime.close()', () => {
  it('drains: waits for runs in flight to finish their work', async () => {
    const runtime = makeRuntime()
    const run = runtime.run({ name: 'drain', tasks: [task('a', 'sleep.mjs', { input: { ms: 200 } }), task('b', 'echo.mjs', { dependsOn: ['a'] })] })
    await whenRunning(run, 'a')
    await runtime.close()
    expect(runtime.status).toBe('closed')
    expect((await run.result).status).toBe('completed')
  })

  it('with force: true aborts running work, even an agent that never yields', async () => {
    const runtime = makeRuntime()
    const run = runtime.run({ name: 'force', tasks: [task('stuck', 'loop.mjs'), task('next', 'echo.mjs', { dependsOn: ['stuck'] })] })
    await whenRunning(run, 'stuck')
    await runtime.close({ force: true })
    const result = await run.result
    expect(result.status).toBe('cancelled')
    expect(result.tasks.stuck).toMatchObject({ state: 'CANCELLED', error: { code: 'ERR_CANCELLED' } })
    expect(result.tasks.next!.state).toBe('CANCELLED')
  })
})

describe('run.cancel()', () => {
  it('stops an agent stuck in a loop, and the pool goes on serving', async () => {
    const runtime = makeRuntime()
    try {
      const run = runtime.run({ name: 'stuck', tasks: [task('s1', 'loop.mjs'), task('s2', 'loop.mjs')] })
      await Promise.all([whenRunning(run, 's1'), whenRunning(run, 's2')])
      const result = await run.cancel()
      expect(result.totals.cancelled).toBe(2)
      expect((await runtime.run({ name: 'after', tasks: [task('x', 'echo.mjs'), task('y', 'echo.mjs')] }).result).status).toBe('completed')
    } finally {
      await runtime.close({ force: true })
    }
  })

  it('cancels a task waiting out its retry delay', async () => {
    const runtime = makeRuntime({ retry: { delayMs: 60_000 } })
    try {
      const run = runtime.run({ name: 'backoff', tasks: [task('t', 'throw.mjs', { retries: 3 })] })
      await new Promise<void>((resolve) => run.on('task:state', (e) => e.state === 'QUEUED' && e.previous === 'RUNNING' && resolve()))
      const result = await run.cancel()
      expect(result.tasks.t).toMatchObject({ state: 'CANCELLED', attempts: 1, error: { code: 'ERR_CANCELLED' } })
    } finally {
      await runtime.close({ force: true })
    }
  })
})
