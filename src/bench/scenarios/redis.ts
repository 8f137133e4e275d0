import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createRuntime, type Plan, type RunResult } from '../../index.ts'
import { benchAgentFile } from '../agent-file.ts'
import { startRedis, type TestRedis } from '../redis-server.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan } from '../runs.ts'
import type { ScenarioRow, Scenario } from '../scenario.ts'

const SLEEP_MS = 100

/**
 * The package's root: the coordinator and the workers run from it, so that the bench agents'
 * modules are inside the workers' checkout whatever directory `troupe bench` was started from
 * (a worker refuses a module outside it: from another directory the scenario failed with
 * ERR_AGENT_MISMATCH).
 */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * The Redis backend (BullMQ) with real `troupe worker` processes: throughput scaling with
 * 1, 2 and 4 workers of concurrency 1 on 100 ms sleeping tasks (this 2-core machine cannot
 * show CPU scaling, so the tasks sleep), the per-task overhead of the Redis path on no-op
 * tasks next to the local pool, and a large plan's throughput through Redis.
 */
const redis: Scenario = {
  name: 'redis',
  description: 'Redis backend: throughput with 1/2/4 troupe worker processes (100 ms sleeping tasks), no-op overhead vs local, a large plan through Redis',
  async run(options) {
    if (spawnSync('redis-server', ['--version']).status !== 0) {
      options.log('redis: skipped — redis-server is not installed (apt-get install redis-server)')
      return []
    }
    const server = await startRedis()
    // Coordinator (this process) and workers (its children) sign and check jobs with one secret.
    process.env.TROUPE_SECRET ??= randomBytes(32).toString('hex')
    const rows: ScenarioRow[] = []
    // The coordinator names module agents relative to its working directory (see PACKAGE_ROOT).
    const startedIn = process.cwd()
    process.chdir(PACKAGE_ROOT)
    try {
      const tasks = options.quick ? 24 : 80
      const sleepPlan = independentPlan('bench-redis-sleep', tasks, benchAgentFile('simulated-llm'), () => ({ ms: SLEEP_MS }))
      const throughput = new Map<number, number>()
      // Workers are added as n grows (1, then 2, then 4), not restarted: each start loads the CLI.
      const sleepers: ChildProcess[] = []
      try {
        for (const n of options.quick ? [1, 2] : [1, 2, 4]) {
          sleepers.push(...(await startWorkers(server, n - sleepers.length, 1, sleepers.length)))
          const result = await runOn(server, sleepPlan, n)
          throughput.set(n, tasks / (result.makespanMs / 1000))
          const base = throughput.get(1)!
          rows.push(
            scenarioRow({
              scenario: 'redis',
              label: `${tasks} x ${SLEEP_MS} ms sleeping tasks on ${n} worker process${n > 1 ? 'es' : ''}`,
              makespanMs: result.makespanMs,
              sequentialMs: result.sequentialMs,
              idealMs: (tasks * SLEEP_MS) / n,
              parallelism: n,
              extra: { workers: n, tasksPerSecond: throughput.get(n), scalingEfficiency: throughput.get(n)! / (n * base) },
            }),
          )
          options.log(`redis: ${n} workers → ${throughput.get(n)!.toFixed(1)} tasks/s (scaling ${(throughput.get(n)! / (n * base)).toFixed(2)})`)
        }
      } finally {
        await stopWorkers(sleepers)
      }
      const noops = options.quick ? 1_000 : 10_000
      const workers = await startWorkers(server, 2, 8)
      try {
        const plan = independentPlan('bench-redis-noop', noops, benchAgentFile('noop'), () => null)
        const remote = await runOn(server, plan, 16)
        const local = await runLocal(plan, 16)
        const remoteUs = (remote.makespanMs * 1000) / noops
        const localUs = (local.makespanMs * 1000) / noops
        options.log(`redis: ${noops} no-op tasks: ${(noops / (remote.makespanMs / 1000)).toFixed(0)} tasks/s through Redis (${remoteUs.toFixed(0)} µs/task) vs ${localUs.toFixed(0)} µs/task on the local pool`)
        // Not a row of its own: the verdict is about parallel speedup, and no-op tasks have none to show.
        const last = rows.pop()!
        rows.push({ ...last, extra: { ...last.extra, noop: { tasks: noops, tasksPerSecond: noops / (remote.makespanMs / 1000), redisUsPerTask: remoteUs, localUsPerTask: localUs, overheadRatio: remoteUs / localUs } } })
      } finally {
        await stopWorkers(workers)
      }
    } finally {
      process.chdir(startedIn)
      await server.stop()
    }
    return rows
  },
}

export default redis

async function runOn(server: TestRedis, plan: Plan, maxParallel: number): Promise<RunResult> {
  const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, maxParallel }, backend: server.url })
  try {
    await runtime.ready()
    return await completed(runtime.run(plan).result)
  } finally {
    await runtime.close({ force: true })
  }
}

async function runLocal(plan: Plan, maxParallel: number): Promise<RunResult> {
  const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, maxParallel } })
  try {
    return await completed(runtime.run(plan).result)
  } finally {
    await runtime.close({ force: true })
  }
}

async function completed(result: Promise<RunResult>): Promise<RunResult> {
  const value = await result
  if (value.status !== 'completed') throw new Error(`redis bench run ended ${value.status}`)
  return value
}

/** Real `troupe worker` processes (the CLI of this build), ready to take jobs. */
async function startWorkers(server: TestRedis, count: number, concurrency: number, named = 0): Promise<ChildProcess[]> {
  const fromSource = import.meta.url.endsWith('.ts')
  const cli = fileURLToPath(new URL(`../../cli/main.${fromSource ? 'ts' : 'js'}`, import.meta.url))
  const args = [...(fromSource ? ['--import', 'tsx'] : []), cli, 'worker', '--backend', server.url, '--concurrency', String(concurrency)]
  return Promise.all(
    Array.from({ length: count }, (_, i) => {
      const child = spawn(process.execPath, [...args, '--name', `bench-${named + i + 1}`], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
      return new Promise<ChildProcess>((resolve, reject) => {
        let err = ''
        child.stderr!.on('data', (chunk: Buffer) => {
          err += chunk.toString()
          if (err.includes('taking attempts')) resolve(child)
        })
        child.once('exit', (code) => reject(new Error(`troupe worker exited with ${code}: ${err}`)))
      })
    }),
  )
}

async function stopWorkers(workers: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once('exit', () => resolve())
          child.kill('SIGTERM')
        }),
    ),
  )
}
