import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
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

// The probe deadline is out of the way: a thread booting slowly on a loaded machine must not decide these tests.
const poolOf = (shares?: (agent: string) => boolean | undefined) =>
  new WorkerPool({
    minThreads: 0,
    maxThreads: 32,
    concurrentTasksPerWorker: 1,
    idleTimeoutMs: 30_000,
    perAgentMb: null,
    loadTimeoutMs: 10_000,
    onError: () => {},
    probeDeadlineMs: 600_000,
    ...(shares ? { shares } : {}),
  })

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

  it('shares threads among attempts of a sleeping agent nobody said waits, once its first probes answered (governor off)', async () => {
    pool = poolOf()
    const handles = Array.from({ length: 12 }, (_, i) => pool!.start(request('sleep', `t${i}`, { ms: 500 }), listener))
    const results = await Promise.all(handles.map((h) => h.result))
    expect(results.every((r) => r.ok)).toBe(true)
    // One thread per core probed alone (a probed attempt may be terminated, so it shares with
    // nobody), then one thread for the ten that waited for the answer.
    expect(pool.threads).toBeLessThanOrEqual(availableParallelism() + 1)
  })

  it('gives each attempt of a CPU-bound agent nobody described a thread of its own', async () => {
    pool = poolOf()
    const first = await pool.start(request('spin', 'first', { ms: 200 }), listener).result
    expect(first.ok).toBe(true)
    const handles = Array.from({ length: 3 }, (_, i) => pool!.start(request('spin', `t${i}`, { ms: 200 }), listener))
    await Promise.all(handles.map((h) => h.result))
    expect(pool.threads).toBe(3)
  })

  it('settles an attempt aborted while it waits for its agent\'s probe as cancelled, without running it', async () => {
    pool = poolOf()
    const probes = Array.from({ length: availableParallelism() }, (_, i) => pool!.start(request('spin', `p${i}`, { ms: 300 }), listener))
    const held = pool.start(request('spin', 'held', { ms: 60_000 }), listener)
    held.abort()
    expect(await held.result).toMatchObject({ ok: false, error: { code: 'ERR_CANCELLED' } })
    await Promise.all(probes.map((h) => h.result))
    expect(pool.threads).toBe(availableParallelism())
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

  it('ends a shared thread left running only an abandoned attempt (regression: code that ignored ctx.signal ran on after its run)', async () => {
    pool = poolOf(() => true)
    const file = join(mkdtempSync(join(tmpdir(), 'troupe-tick-')), 'ticks')
    const stuck = pool.start(request('tick', 'stuck', { file }), listener)
    await vi.waitFor(() => expect(existsSync(file)).toBe(true), { timeout: 30_000 })
    stuck.abort()
    expect(await stuck.result).toMatchObject({ ok: false, error: { code: 'ERR_CANCELLED' } })
    await vi.waitFor(() => expect(pool!.threads).toBe(0), { timeout: 30_000 })
    const ticks = readFileSync(file, 'utf8')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(readFileSync(file, 'utf8')).toBe(ticks)
  })

  it('keeps a shared thread with an abandoned attempt while a neighbour still runs there, and ends it after', async () => {
    pool = poolOf(() => true)
    const file = join(mkdtempSync(join(tmpdir(), 'troupe-tick-')), 'ticks')
    const stuck = pool.start(request('tick', 'stuck', { file }), listener)
    const neighbour = pool.start(request('sleep', 'neighbour', { ms: 1_000 }), listener)
    await vi.waitFor(() => expect(existsSync(file)).toBe(true), { timeout: 30_000 })
    stuck.abort()
    await stuck.result
    expect(await neighbour.result).toMatchObject({ ok: true, output: { taskId: 'neighbour' } })
    await vi.waitFor(() => expect(pool!.threads).toBe(0), { timeout: 30_000 })
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
