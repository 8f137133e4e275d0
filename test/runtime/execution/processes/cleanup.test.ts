import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import type { AttemptListener, AttemptRequest } from '../../../../src/runtime/execution/executor.ts'
import { ProcessExecutor } from '../../../../src/runtime/execution/processes/process-executor.ts'
import { CLI_ENTRY } from '../../../helpers/cli.ts'
import { eventually, survivors } from './survivors.ts'

/** A process and its two grandchildren, which a kill of the leader alone would orphan. */
const TREE = 'sleep 100 & sleep 100 & wait'
/** The same, with SIGTERM ignored (inherited across exec): only SIGKILL after the grace stops it. */
const STUBBORN = "trap '' TERM; sleep 100 & sleep 100 & wait"

const plan = (mark: string, run: string, task: Record<string, unknown> = {}): Plan =>
  ({ name: 'tree', agents: { x: { kind: 'command', run, env: { TROUPE_MARK: mark } } }, tasks: [{ id: 't', agent: 'x', retries: 0, ...task }] }) as Plan

let runtime: Runtime

const listener: AttemptListener = {
  onProgress: () => {},
  onLog: () => {},
  onAcquire: () => Promise.resolve(() => {}),
  onUsage: () => {},
  onClaim: () => ({ granted: true }),
  onRelease: () => {},
  onSpawn: () => Promise.reject(new Error('not used')),
}

const request = (mark: string, run: string): AttemptRequest => ({
  runId: 'r',
  taskId: 't',
  attempt: 1,
  agent: { kind: 'command', name: 'x', run, cwd: undefined, env: { TROUPE_MARK: mark }, output: 'text', executable: '/bin/sh' },
  input: {},
  dependencies: {},
  model: undefined,
  timeoutMs: 60_000,
  graceMs: 60_000,
  baseDir: tmpdir(),
  runDir: undefined,
  workspace: undefined,
  port: undefined,
})

beforeAll(() => {
  runtime = createRuntime({ config: { maxParallel: 4, pool: { minThreads: 1, maxThreads: 2 }, cancelGraceMs: 150, governor: { enabled: false }, checkpoint: { enabled: false } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

describe('no process outlives its attempt', () => {
  it('a timeout stops the whole group, grandchildren included', async () => {
    const mark = randomUUID()
    const result = await runtime.run(plan(mark, TREE, { timeoutMs: 400 })).result
    expect(result.tasks.t?.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })

  it('a timeout SIGKILLs a group that ignores SIGTERM after the grace', async () => {
    const mark = randomUUID()
    await runtime.run(plan(mark, STUBBORN, { timeoutMs: 400 })).result
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })

  it('cancelling the run stops the group', async () => {
    const mark = randomUUID()
    const run = runtime.run(plan(mark, TREE))
    expect(await eventually(() => survivors(mark).length === 3)).toBe(true)
    const pgrps = new Set(survivors(mark).map((p) => p.pgrp))
    expect(pgrps.size).toBe(1)
    await run.cancel('test')
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })

  it('a background job left behind by a successful command is reaped when the leader exits', async () => {
    const mark = randomUUID()
    const result = await runtime.run(plan(mark, 'sleep 100 & echo started')).result
    expect(result.tasks.t).toMatchObject({ state: 'COMPLETED', output: { stdout: 'started\n' } })
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })

  it('runtime.close({ force: true }) kills every group it holds', async () => {
    const mark = randomUUID()
    const own = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 1_000, governor: { enabled: false }, checkpoint: { enabled: false } } })
    void own.run(plan(mark, STUBBORN)).result
    expect(await eventually(() => survivors(mark).length === 3)).toBe(true)
    await own.close({ force: true })
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })

  it('executor.close(true) SIGKILLs its groups without waiting for the grace', async () => {
    const mark = randomUUID()
    const executor = new ProcessExecutor()
    const handle = executor.start(request(mark, STUBBORN), listener)
    expect(await eventually(() => survivors(mark).length === 3)).toBe(true)
    await executor.close(true)
    expect(survivors(mark)).toEqual([])
    expect((await handle.result).ok).toBe(false)
  })

  it('measures the CPU time of the whole process tree', async () => {
    const executor = new ProcessExecutor()
    // Two busy grandchildren for ~0.6 s each: the group's CPU time counts both.
    const busy = 'node -e "const end = Date.now() + 600; while (Date.now() < end);"'
    const result = await executor.start(request(randomUUID(), `${busy} & ${busy} & wait`), listener).result
    await executor.close()
    expect(result.ok).toBe(true)
    expect(result.resources?.cpuMs).toBeGreaterThan(0)
    expect(result.resources?.peakRssMb).toBeGreaterThan(0)
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`troupe run interrupted by ${signal} leaves no process behind`, async () => {
      const mark = randomUUID()
      const dir = mkdtempSync(join(tmpdir(), 'troupe-sig-'))
      writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan(mark, STUBBORN)))
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI_ENTRY, 'run', 'plan.json', '--quiet'], { cwd: dir, stdio: 'ignore', env: { ...process.env, NO_COLOR: '1' } })
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      expect(await eventually(() => survivors(mark).length === 3, 400)).toBe(true)
      child.kill(signal)
      await exited
      expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
    })
  }
})
