import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { AttemptListener, AttemptRequest } from '../../../../src/runtime/execution/executor.ts'
import { WorkerPool } from '../../../../src/runtime/execution/threads/pool.ts'

const fixture = (name: string) => join(import.meta.dirname, '..', '..', '..', 'fixtures', 'agents', `${name}.mjs`)

const listener: AttemptListener = {
  onProgress() {},
  onLog() {},
  onAcquire: () => Promise.resolve(() => {}),
  onUsage() {},
  onClaim: () => ({ granted: true }),
  onRelease() {},
  onSpawn: () => Promise.reject(new Error('not used')),
}

const request = (agent: string, taskId: string, input: unknown): AttemptRequest => ({
  runId: 'r',
  taskId,
  attempt: 1,
  agent: { kind: 'module', name: agent, moduleUrl: pathToFileURL(fixture(agent)).href },
  input,
  dependencies: {},
  model: undefined,
  timeoutMs: 60_000,
  graceMs: 0,
  baseDir: import.meta.dirname,
  runDir: undefined,
  workspace: undefined,
  port: undefined,
})

const poolOf = (shares?: (agent: string) => boolean) =>
  new WorkerPool({ minThreads: 0, maxThreads: 32, concurrentTasksPerWorker: 1, idleTimeoutMs: 30_000, perAgentMb: null, loadTimeoutMs: 10_000, onError: () => {}, ...(shares ? { shares } : {}) })

describe('worker threads shared by agents that wait', () => {
  let pool: WorkerPool | undefined
  afterEach(async () => {
    await pool?.close(true)
    pool = undefined
  })

  it('runs 20 sleeping attempts of an agent that waits on one thread (each had a thread started for it)', async () => {
    pool = poolOf((agent) => agent === 'sleep')
    const handles = Array.from({ length: 20 }, (_, i) => pool!.start(request('sleep', `t${i}`, { ms: 300 }), listener))
    const results = await Promise.all(handles.map((h) => h.result))
    expect(results.every((r) => r.ok)).toBe(true)
    expect(pool.threads).toBe(1)
  })

  it('gives each attempt of an agent not known to wait a thread of its own', async () => {
    pool = poolOf(() => false)
    const handles = Array.from({ length: 4 }, (_, i) => pool!.start(request('sleep', `t${i}`, { ms: 300 }), listener))
    await Promise.all(handles.map((h) => h.result))
    expect(pool.threads).toBe(4)
  })

  it('settles an aborted attempt on a shared thread as cancelled, and its neighbours still complete', async () => {
    pool = poolOf(() => true)
    const neighbours = Array.from({ length: 3 }, (_, i) => pool!.start(request('sleep', `n${i}`, { ms: 300 }), listener))
    const stuck = pool.start(request('sleep', 'stuck', { ms: 60_000 }), listener)
    stuck.abort()
    expect(await stuck.result).toMatchObject({ ok: false, error: { code: 'ERR_CANCELLED' } })
    const results = await Promise.all(neighbours.map((h) => h.result))
    expect(results.map((r) => r.ok)).toEqual([true, true, true])
  })

  it('closes without waiting for an abandoned attempt that never returns', async () => {
    pool = poolOf(() => true)
    // A thread is up: the stuck attempt runs on it at once (not left in piscina's queue).
    await pool.start(request('sleep', 'first', { ms: 10 }), listener).result
    const stuck = pool.start(request('sleep', 'stuck', { ms: 600_000 }), listener)
    await new Promise((resolve) => setTimeout(resolve, 100))
    stuck.abort()
    await stuck.result
    await pool.close(false)
    pool = undefined
  })
})
