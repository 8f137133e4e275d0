import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TaskSpec } from '../../src/runtime/plan/plan.ts'
import { retryDelayFor } from '../../src/runtime/core/retry-policy.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'

const agent = (name: string) => join(import.meta.dirname, '..', 'fixtures', 'agents', name)

let runtime: Runtime
let dir: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'troupe-retry-'))
  runtime = createRuntime({
    config: {
      maxParallel: 2,
      pool: { minThreads: 1, maxThreads: 2 },
      retry: { delayMs: 10, backoff: 'exponential', maxDelayMs: 50 },
      governor: { enabled: false },
      checkpoint: { enabled: false },
    },
  })
})

afterAll(async () => {
  await runtime.close()
  rmSync(dir, { recursive: true, force: true })
})

const flaky = (name: string, extra: Partial<TaskSpec> & { input?: Record<string, unknown> } = {}): TaskSpec => ({
  id: name,
  agent: agent('flaky.mjs'),
  ...extra,
  input: { dir, name, ...extra.input },
})

describe('retries', () => {
  it('a flaky agent that fails twice completes with attempts: 3 when retries: 2', async () => {
    const result = await runtime.run({ name: 'flaky', tasks: [flaky('twice', { retries: 2 })] }).result
    expect(result.tasks.twice).toMatchObject({ state: 'COMPLETED', attempts: 3, output: { calls: 3 } })
  })

  it('fails with the last attempt error when retries run out', async () => {
    const result = await runtime.run({ name: 'flaky', tasks: [flaky('short', { retries: 1 })] }).result
    expect(result.tasks.short).toMatchObject({ state: 'FAILED', attempts: 2, error: { code: 'ERR_TASK_FAILED' } })
    expect(result.tasks.short!.error!.message).toContain('flaky failure 2')
  })

  it('does not retry an error the agent marked retryable = false', async () => {
    const result = await runtime.run({ name: 'flaky', tasks: [flaky('final', { retries: 3, input: { retryable: false } })] }).result
    expect(result.tasks.final).toMatchObject({ state: 'FAILED', attempts: 1, error: { code: 'ERR_TASK_FAILED' } })
    expect(readFileSync(join(dir, 'final.count'), 'utf8')).toBe('1')
  })

  it('takes task.retries over config.retry.maxRetries', async () => {
    const retrying = createRuntime({
      config: { retry: { maxRetries: 5, delayMs: 0 }, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } },
    })
    try {
      const result = await retrying.run({ name: 'flaky', tasks: [flaky('none', { retries: 0 })] }).result
      expect(result.tasks.none).toMatchObject({ state: 'FAILED', attempts: 1 })
    } finally {
      await retrying.close()
    }
  })

  it('goes RUNNING → QUEUED between attempts', async () => {
    const run = runtime.run({ name: 'flaky', tasks: [flaky('states', { retries: 2 })] })
    const states: string[] = []
    run.on('task:state', (e) => states.push(e.state))
    await run.result
    expect(states).toEqual(['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'COMPLETED'])
  })

  it('retries a timed-out attempt', async () => {
    const result = await runtime.run({ name: 'slow', tasks: [{ id: 'slow', agent: agent('loop.mjs'), timeoutMs: 100, retries: 1 }] }).result
    expect(result.tasks.slow).toMatchObject({ state: 'FAILED', attempts: 2, error: { code: 'ERR_TASK_TIMEOUT' } })
  })
})

describe('retryDelayFor (effect Schedule)', () => {
  const base = { maxRetries: 5, delayMs: 100, maxDelayMs: 500, jitter: false, rateLimitRetries: 5 } as const

  it('doubles the delay per attempt with exponential backoff, up to maxDelayMs', () => {
    const delay = retryDelayFor({ ...base, backoff: 'exponential' })
    expect([1, 2, 3, 4, 5].map(delay)).toEqual([100, 200, 400, 500, 500])
  })

  it('keeps the delay with fixed backoff', () => {
    const delay = retryDelayFor({ ...base, backoff: 'fixed' })
    expect([1, 2, 3].map(delay)).toEqual([100, 100, 100])
  })

  it('scales the capped delay by the random factor with jitter', () => {
    const delay = retryDelayFor({ ...base, backoff: 'exponential', jitter: true }, () => 0.5)
    expect([1, 2, 3, 4].map(delay)).toEqual([50, 100, 200, 250])
  })
})
