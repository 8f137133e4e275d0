import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Queue, QueueEvents, type ConnectionOptions } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTroupeError } from '../../../../src/runtime/core/errors.ts'
import { parseRedisUrl, redisOptions } from '../../../../src/runtime/execution/redis/connection.ts'
import { signJob } from '../../../../src/runtime/execution/redis/job-signature.ts'
import { PREFIX, QUEUE, type AttemptJob, type AttemptJobResult } from '../../../../src/runtime/execution/redis/protocol.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { CLI_ENTRY, runCli } from '../../../helpers/cli.ts'
import { freePort, startRedis, type TestRedis } from '../../../helpers/redis-server.ts'
import { startTroupeWorker } from '../../../helpers/troupe-worker.ts'

const TSX = import.meta.resolve('tsx')
// The coordinator (this process) signs jobs with it; the worker processes inherit it and check them.
process.env.TROUPE_SECRET = 'test-secret-0123456789abcdef'
const root = join(import.meta.dirname, '..', '..', '..', '..')
const whoami = join(root, 'test', 'fixtures', 'agents', 'whoami.mjs')
const spawnAgent = join(root, 'test', 'fixtures', 'agents', 'spawn.mjs')
const quiet = { governor: { enabled: false }, checkpoint: { enabled: false } } as const

let redis: TestRedis
const workers: ChildProcess[] = []

/** Starts a real `troupe worker` process and waits until it takes jobs. */
function startWorker(name: string, cwd = root): Promise<ChildProcess> {
  return startTroupeWorker(redis.url, workers, { name, cwd })
}

function plan(n: number, ms: number, extra: Record<string, unknown> = {}) {
  return { name: 'remote', tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, agent: whoami, input: { ms }, ...extra })) }
}

beforeAll(async () => {
  redis = await startRedis()
  await Promise.all([startWorker('w1'), startWorker('w2'), startWorker('w3')])
}, 60_000)

afterAll(async () => {
  for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await redis?.stop()
})

describe('Redis backend', () => {
  it('runs a 60-task plan on 3 worker processes: every task completes once, every worker ran some', async () => {
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 6 }, backend: redis.url })
    await runtime.ready()
    const result = await runtime.run(plan(60, 30)).result
    await runtime.close()
    expect(result.status).toBe('completed')
    const tasks = Object.values(result.tasks)
    expect(tasks.every((t) => t.state === 'COMPLETED' && t.attempts === 1)).toBe(true)
    const pids = new Set(tasks.map((t) => (t.output as { pid: number }).pid))
    expect(pids.size).toBe(3)
    expect(pids.has(process.pid)).toBe(false)
    expect(new Set(tasks.map((t) => t.worker))).toEqual(new Set(['w1', 'w2', 'w3']))
  }, 60_000)

  it('ctx.spawn with wait on remote workers, every worker slot holding a waiting parent: the coordinator adds the children, they run, no deadlock', async () => {
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 3 }, backend: redis.url })
    await runtime.ready()
    const parent = (p: number) => ({
      id: `lead-${p}`,
      agent: spawnAgent,
      input: { wait: true, throwOnRefusal: true, children: [0, 1].map((c) => ({ id: `child-${p}-${c}`, agent: whoami, input: { ms: 30 } })) },
    })
    const result = await runtime.run({ name: 'remote-spawn', tasks: [0, 1, 2].map(parent) }).result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(result.totals).toMatchObject({ tasks: 9, completed: 9 })
    expect(result.tasks['child-2-1']).toMatchObject({ state: 'COMPLETED', parent: 'lead-2' })
    expect(Object.keys((result.tasks['lead-0']!.output as { outputs: object }).outputs)).toEqual(['child-0-0', 'child-0-1'])
  })

  it('holds a named limit of maxConcurrent 1 across all workers: no two tasks using it overlap', async () => {
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 6, limits: { one: { maxConcurrent: 1 } } }, backend: redis.url })
    const result = await runtime.run(plan(6, 80, { uses: ['one'] })).result
    await runtime.close()
    expect(result.status).toBe('completed')
    const spans = Object.values(result.tasks)
      .map((t) => t.output as { startedAt: number; finishedAt: number })
      .sort((a, b) => a.startedAt - b.startedAt)
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.startedAt).toBeGreaterThanOrEqual(spans[i - 1]!.finishedAt)
  }, 60_000)

  it('loses nothing when a worker is killed with SIGKILL mid-run: every task still completes', async () => {
    const extra = await startWorker('doomed')
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 4 }, backend: redis.url })
    const run = runtime.run(plan(16, 400))
    setTimeout(() => extra.kill('SIGKILL'), 600)
    const result = await run.result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(result.totals.completed).toBe(16)
  }, 90_000)

  it("fails a module that differs from the coordinator's on every worker with ERR_AGENT_MISMATCH, once each put it back", async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'troupe-worker-checkout-'))
    writeFileSync(join(elsewhere, 'agent.mjs'), 'export default async () => "worker copy"\n')
    const connection = redisOptions(parseRedisUrl(redis.url)) as ConnectionOptions
    const queue = new Queue(QUEUE, { connection, prefix: PREFIX })
    const events = new QueueEvents(QUEUE, { connection, prefix: PREFIX })
    await events.waitUntilReady()
    const job: AttemptJob = signJob(process.env.TROUPE_SECRET!, 'mismatch.a.1', {
      request: {
        runId: 'mismatch', taskId: 'a', attempt: 1, input: null, dependencies: {}, model: undefined, timeoutMs: 5_000, graceMs: 100,
        baseDir: elsewhere, runDir: undefined, workspace: undefined, port: undefined,
        // The coordinator's file is not on this machine; the worker's checkout has another content.
        agent: { kind: 'module', name: 'agent', moduleUrl: pathToFileURL('/nonexistent/checkout/agent.mjs').href },
      },
      module: { relativePath: 'agent.mjs', sha256: '0'.repeat(64) },
    })
    const done = new Promise<AttemptJobResult>((resolve) => events.on('completed', ({ jobId, returnvalue }) => jobId === 'mismatch.a.1' && resolve(returnvalue as unknown as AttemptJobResult)))
    const worker = await startWorker('elsewhere', elsewhere)
    await queue.add('a', job, { jobId: 'mismatch.a.1' })
    const value = await done
    worker.kill('SIGTERM')
    await Promise.all([queue.close(), events.close()])
    expect(value.result.ok).toBe(false)
    expect(!value.result.ok && value.result.error.code).toBe('ERR_AGENT_MISMATCH')
    expect(!value.result.ok && value.result.error.message).toMatch(/no worker connected can run it: .*elsewhere/)
  }, 60_000)

  it('fails up front with ERR_BACKEND_UNAVAILABLE when Redis cannot be reached', async () => {
    const runtime = createRuntime({ config: quiet, backend: `redis://127.0.0.1:${await freePort()}` })
    const error = await runtime.ready().catch((e: unknown) => e)
    await runtime.close()
    expect(isTroupeError(error, 'ERR_BACKEND_UNAVAILABLE')).toBe(true)
  })

  it('exits 2 from `troupe run --backend` when Redis cannot be reached, before any task starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-backend-'))
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan(1, 1)))
    const result = await runCli(['run', join(dir, 'plan.json'), '--backend', `redis://127.0.0.1:${await freePort()}`], { cwd: dir })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('ERR_BACKEND_UNAVAILABLE')
  })
})

describe('Redis backend: the coordinator killed with SIGKILL, then resumed', () => {
  it('adopts the attempts still queued or running on workers: every task runs exactly once', async () => {
    const { existsSync, readFileSync } = await import('node:fs')
    const cwd = mkdtempSync(join(tmpdir(), 'troupe-coordinator-'))
    const marks = join(cwd, 'marks')
    const marker = join(root, 'test', 'fixtures', 'agents', 'marker.mjs')
    writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, backend: redis.url }))
    writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'co', maxParallel: 3, tasks: Array.from({ length: 9 }, (_, i) => ({ id: `t${i}`, agent: marker, input: { file: marks, ms: 700 } })) }))
    const journal = join(cwd, '.troupe', 'co', 'journal.jsonl')
    const completed = () => (existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').filter((l) => l.includes('"COMPLETED"')).length : 0)
    const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', 'plan.json', '--run-id', 'co', '--quiet'], { cwd, stdio: 'ignore' })
    const end = Date.now() + 30_000
    while (completed() < 3 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 25))
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    const again = await runCli(['run', 'plan.json', '--run-id', 'co', '--json', '--quiet'], { cwd })
    expect(again.code).toBe(0)
    const result = JSON.parse(again.stdout) as { totals: { completed: number } }
    expect(result.totals.completed).toBe(9)
    const runs = readFileSync(marks, 'utf8').split('\n').filter(Boolean)
    expect(runs.sort()).toEqual(Array.from({ length: 9 }, (_, i) => `t${i}`).sort())
  }, 90_000)
})
