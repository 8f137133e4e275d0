import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { RunResult } from '../../../../src/runtime/report/result.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { CLI_ENTRY, runCli } from '../../../helpers/cli.ts'
import { startRedis, type TestRedis } from '../../../helpers/redis-server.ts'
import { startTroupeWorker } from '../../../helpers/troupe-worker.ts'

/**
 * Regression (#21.4): Redis killed and restarted empty ran every in-flight task twice; frozen,
 * it ran some twice; down, it failed tasks that had completed. Each fault hits a run of
 * marker tasks (each appends its id to a file per execution) on two worker processes.
 * The long versions (40 s) are scripts/reliability/redis-faults.ts.
 */

const TSX = import.meta.resolve('tsx')
const root = join(import.meta.dirname, '..', '..', '..', '..')
const marker = join(root, 'test', 'fixtures', 'agents', 'marker.mjs')
process.env.TROUPE_SECRET = 'fault-test-secret-0123456789'

let redis: TestRedis | undefined
const workers: ChildProcess[] = []

afterEach(async () => {
  for (const child of workers.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  redis?.signal('SIGCONT')
  await redis?.stop()
  redis = undefined
})

async function startWorker(name: string): Promise<void> {
  await startTroupeWorker(redis!.url, workers, { name, concurrency: 2 })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Each task that did not complete: its state and error. */
function notCompleted(result: RunResult): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(result.tasks)
      .filter(([, task]) => task.state !== 'COMPLETED')
      .map(([id, task]) => [id, { state: task.state, error: task.error }]),
  )
}

/** Runs 8 marker tasks of `ms` each on two workers, applying `fault` once tasks are in flight. */
async function runThrough(fault: () => Promise<void>, ms = 1_500) {
  redis = await startRedis()
  await Promise.all([startWorker('f1'), startWorker('f2')])
  const marks = join(mkdtempSync(join(tmpdir(), 'troupe-faults-')), 'marks')
  const config = { governor: { enabled: false }, checkpoint: { enabled: false }, maxParallel: 4 }
  const runtime = createRuntime({ config, backend: redis.url })
  await runtime.ready()
  const ids = Array.from({ length: 8 }, (_, i) => `t${i}`)
  const run = runtime.run({ name: 'faults', tasks: ids.map((id) => ({ id, agent: marker, input: { file: marks, ms } })) })
  const end = Date.now() + 30_000
  while (!(existsSync(marks) && readFileSync(marks, 'utf8').split('\n').filter(Boolean).length >= 2) && Date.now() < end) await sleep(20)
  await fault()
  const result = await run.result
  await runtime.close()
  const runs = readFileSync(marks, 'utf8').split('\n').filter(Boolean)
  return { result, runs, ids }
}

describe('Redis faults mid-run: every task completes, none runs twice', () => {
  it('Redis killed and restarted empty', async () => {
    const { result, runs, ids } = await runThrough(async () => {
      const port = redis!.port
      await redis!.stop()
      await sleep(500)
      redis = await startRedis(port)
    })
    expect(runs.sort()).toEqual([...ids].sort())
    // With the tasks that did not complete and why, should one not (seen once, on Node 22 under load).
    expect({ status: result.status, notCompleted: notCompleted(result) }).toEqual({ status: 'completed', notCompleted: {} })
    expect(result.totals.completed).toBe(8)
  }, 120_000)

  it('Redis frozen 5 s (SIGSTOP, then SIGCONT)', async () => {
    const { result, runs, ids } = await runThrough(async () => {
      redis!.signal('SIGSTOP')
      await sleep(5_000)
      redis!.signal('SIGCONT')
    })
    expect(runs.sort()).toEqual([...ids].sort())
    // With the tasks that did not complete and why, should one not (seen once, on Node 22 under load).
    expect({ status: result.status, notCompleted: notCompleted(result) }).toEqual({ status: 'completed', notCompleted: {} })
    expect(result.totals.completed).toBe(8)
  }, 120_000)

  it('Redis down 5 s, then back empty', async () => {
    const { result, runs, ids } = await runThrough(async () => {
      const port = redis!.port
      await redis!.stop()
      await sleep(5_000)
      redis = await startRedis(port)
    })
    expect(runs.sort()).toEqual([...ids].sort())
    // With the tasks that did not complete and why, should one not (seen once, on Node 22 under load).
    expect({ status: result.status, notCompleted: notCompleted(result) }).toEqual({ status: 'completed', notCompleted: {} })
    expect(result.totals.completed).toBe(8)
  }, 120_000)
})

describe('Redis faults and a coordinator killed with SIGKILL', () => {
  it('resumes after the coordinator died and Redis restarted empty: every task once, no hang', async () => {
    redis = await startRedis()
    await Promise.all([startWorker('r1'), startWorker('r2')])
    const cwd = mkdtempSync(join(tmpdir(), 'troupe-faults-resume-'))
    const marks = join(cwd, 'marks')
    const tasks = Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, agent: marker, input: { file: marks, ms: 1_000 } }))
    writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'resume', maxParallel: 4, tasks }))
    const args = ['--import', TSX, CLI_ENTRY, 'run', 'plan.json', '--run-id', 'rs', '--backend', redis.url, '--quiet']
    const first = spawn(process.execPath, args, { cwd, stdio: 'ignore' })
    const end = Date.now() + 30_000
    while (!(existsSync(marks) && readFileSync(marks, 'utf8').split('\n').filter(Boolean).length >= 2) && Date.now() < end) await sleep(20)
    first.kill('SIGKILL')
    await new Promise((resolve) => first.once('exit', resolve))
    const port = redis.port
    await redis.stop()
    redis = await startRedis(port)
    const again = await runCli(['run', 'plan.json', '--run-id', 'rs', '--backend', redis.url, '--json', '--quiet'], { cwd })
    expect(again.code).toBe(0)
    expect((JSON.parse(again.stdout) as { totals: { completed: number } }).totals.completed).toBe(8)
    const runs = readFileSync(marks, 'utf8').split('\n').filter(Boolean)
    expect(runs.sort()).toEqual(tasks.map((task) => task.id).sort())
  }, 120_000)
})
