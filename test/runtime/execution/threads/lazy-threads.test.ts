import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { AttemptListener, AttemptRequest } from '../../../../src/runtime/execution/executor.ts'
import { WorkerPool } from '../../../../src/runtime/execution/threads/pool.ts'

const noop = pathToFileURL(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'agents', 'noop.mjs')).href

const listener: AttemptListener = {
  onProgress: () => {},
  onLog: () => {},
  onUsage: () => {},
  onAcquire: async () => () => {},
  onClaim: () => ({ granted: true }),
  onRelease: () => {},
  onSpawn: async () => ({ ok: false, error: { code: 'ERR_ARGUMENT_INVALID', message: 'no spawn here' } }),
}

const request: AttemptRequest = {
  runId: 'r',
  taskId: 't',
  attempt: 1,
  agent: { kind: 'module', name: 'noop', moduleUrl: noop },
  input: {},
  dependencies: {},
  model: undefined,
  timeoutMs: 60_000,
  graceMs: 0,
  baseDir: import.meta.dirname,
  runDir: undefined,
  workspace: undefined,
  port: undefined,
}

describe('worker threads start on demand', () => {
  let pool: WorkerPool | undefined
  afterEach(async () => {
    await pool?.close(true)
    pool = undefined
  })

  it('a pool with minThreads 2 starts no thread until its first module attempt', async () => {
    pool = new WorkerPool({ minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 1, idleTimeoutMs: 30_000, perAgentMb: null, loadTimeoutMs: 10_000, onError: () => {} })
    expect(pool.threads).toBe(0)
    const result = await pool.start(request, listener).result
    expect(result.ok).toBe(true)
    expect(pool.threads).toBeGreaterThan(0)
  })

  it('closes a pool that never started a thread', async () => {
    const unused = new WorkerPool({ minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 1, idleTimeoutMs: 30_000, perAgentMb: null, loadTimeoutMs: 10_000, onError: () => {} })
    await unused.close()
    expect(unused.threads).toBe(0)
  })
})
