import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TERMINAL_STATES } from '../../src/runtime/core/task-state.ts'
import type { TroupeConfig } from '../../src/runtime/core/config.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'
import type { Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import type { Run } from '../../src/runtime/run.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { testClock, type TestClock } from '../helpers/test-clock.ts'

const agent = (name: string) => join(import.meta.dirname, '..', 'fixtures', 'agents', name)
const task = (id: string, file: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent(file), ...extra })

let runtime: Runtime | undefined
let clock: TestClock

afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

/** A real runtime (real worker threads) whose timeouts and retry delays run on a test clock. */
function start(plan: Plan, config: TroupeConfig = {}): Run {
  clock = testClock(1_000)
  runtime = createRuntime({
    clock,
    config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false }, ...config },
  })
  return runtime.run(plan)
}

/** Resolves with the run-clock time when `taskId` enters `state` (from `previous`, if given). */
function reaches(run: Run, taskId: string, state: string, previous?: string): Promise<number> {
  return new Promise((resolve) =>
    run.on('task:state', (event) => {
      if (event.taskId === taskId && event.state === state && (previous === undefined || event.previous === previous)) resolve(event.at)
    }),
  )
}

function expectAllTerminal(result: RunResult): void {
  const states = Object.values(result.tasks).map((t) => t.state)
  expect(states.filter((s) => !TERMINAL_STATES.has(s))).toEqual([])
  const { completed, failed, skipped, cancelled, tasks } = result.totals
  expect(completed + failed + skipped + cancelled).toBe(tasks)
}

describe('run machine: final status by reason', () => {
  it('completed: every task completed', async () => {
    const result = await start({ name: 'ok', tasks: [task('a', 'echo.mjs'), task('b', 'echo.mjs', { dependsOn: ['a'] })] }).result
    expect(result.status).toBe('completed')
    expectAllTerminal(result)
  })

  it('failed: a task failed, its dependent is skipped, the run has no stop error', async () => {
    const result = await start({ name: 'fail', tasks: [task('a', 'throw.mjs'), task('b', 'echo.mjs', { dependsOn: ['a'] })] }).result
    expect(result.status).toBe('failed')
    expect(result.error).toBeUndefined()
    expect(result.tasks.b).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_DEPENDENCY_FAILED' } })
    expectAllTerminal(result)
  })

  it('cancelled: cancel() ends running and pending tasks CANCELLED with ERR_CANCELLED', async () => {
    const run = start({ name: 'cancel', tasks: [task('a', 'watch-signal.mjs'), task('b', 'echo.mjs', { dependsOn: ['a'] })] })
    await reaches(run, 'a', 'RUNNING')
    const result = await run.cancel('enough')
    expect(result.status).toBe('cancelled')
    expect(result.error).toEqual({ code: 'ERR_CANCELLED', message: 'enough' })
    expect([result.tasks.a!.state, result.tasks.b!.state]).toEqual(['CANCELLED', 'CANCELLED'])
    expectAllTerminal(result)
  })

  it('fail(): the run ends failed with the given error, even though it was stopped from outside', async () => {
    const run = start({ name: 'fail-fast', tasks: [task('a', 'watch-signal.mjs')] })
    await reaches(run, 'a', 'RUNNING')
    const result = await run.fail({ code: 'ERR_TASK_FAILED', message: 'stop now' })
    expect(result.status).toBe('failed')
    expect(result.tasks.a).toMatchObject({ state: 'CANCELLED', error: { message: 'stop now' } })
  })

  it('budget pause: the run settles paused with ERR_BUDGET_EXCEEDED, tasks not started CANCELLED', async () => {
    const spend = (id: string) => task(id, 'spend.mjs', { input: { usage: { costUsd: 1 } } })
    const result = await start({ name: 'pause', tasks: [spend('a'), spend('b'), spend('c')] }, { maxParallel: 1, budget: { maxCostUsd: 1 } }).result
    expect(result.status).toBe('paused')
    expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
    expect(Object.values(result.tasks).map((t) => t.state)).toEqual(['COMPLETED', 'CANCELLED', 'CANCELLED'])
  })

  it('budget fail: the run ends failed with ERR_BUDGET_EXCEEDED', async () => {
    const spend = (id: string) => task(id, 'spend.mjs', { input: { usage: { costUsd: 1 } } })
    const result = await start({ name: 'budget-fail', tasks: [spend('a'), spend('b')] }, { maxParallel: 1, budget: { maxCostUsd: 1, onExceeded: 'fail' } }).result
    expect(result.status).toBe('failed')
    expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
    expectAllTerminal(result)
  })

  it('crash loop: worker crashes past supervision.maxRestarts fail the run with ERR_CRASH_LOOP', async () => {
    const plan: Plan = { name: 'crashes', tasks: [task('x', 'exit.mjs'), task('y', 'exit.mjs'), task('z', 'watch-signal.mjs', { dependsOn: ['x'] })] }
    const result = await start(plan, { supervision: { maxRestarts: 1, periodMs: 60_000 } }).result
    expect(result.status).toBe('failed')
    expect(result.error?.code).toBe('ERR_CRASH_LOOP')
    expectAllTerminal(result)
  })
})

describe('run machine: timers on the injected clock', () => {
  it('a retry waits for its backoff delay on the run clock', async () => {
    const run = start({ name: 'retry', tasks: [task('a', 'throw.mjs', { retries: 1 })] }, { retry: { delayMs: 5_000, backoff: 'fixed' } })
    const failedAt = await reaches(run, 'a', 'QUEUED', 'RUNNING')
    expect(run.stateOf('a')).toBe('QUEUED')
    const second = reaches(run, 'a', 'RUNNING')
    await clock.advance(5_000)
    expect(await second).toBe(failedAt + 5_000)
    expect((await run.result).tasks.a).toMatchObject({ state: 'FAILED', attempts: 2 })
  })

  it('an attempt times out when the run clock passes timeoutMs, and its agent is aborted', async () => {
    const run = start({ name: 'timeout', tasks: [task('a', 'watch-signal.mjs', { timeoutMs: 60_000 })] })
    const watching = new Promise<void>((resolve) => run.on('task:log', (e) => e.message === 'watching' && resolve()))
    await watching
    await clock.advance(60_000)
    const result = await run.result
    expect(result.tasks.a).toMatchObject({ state: 'FAILED', error: { code: 'ERR_TASK_TIMEOUT' } })
    expect(result.tasks.a!.durationMs).toBe(60_000)
  })
})

describe('run machine: memory', () => {
  it('a task actor is released when its task ends', async () => {
    const run = start({ name: 'release', tasks: [task('quick', 'echo.mjs'), task('slow', 'watch-signal.mjs')] })
    await Promise.all([reaches(run, 'slow', 'RUNNING'), reaches(run, 'quick', 'COMPLETED')])
    expect(run.stateOf('quick')).toBe('COMPLETED')
    expect(run.liveTasks).toBe(1)
    await run.cancel()
    expect(run.liveTasks).toBe(0)
  })
})
