import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import PQueue from 'p-queue'
import { Piscina } from 'piscina'
import { Bench } from 'tinybench'
import { createRuntime } from '../../index.ts'
import { benchAgentFile } from '../agent-file.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario, ScenarioRow } from '../scenario.ts'
import { round3 } from '../stats.ts'

/** 10,000 no-op tasks: what troupe adds per task (actors, scheduling, events) over a bare pool. */
async function noopThroughput(quick: boolean, tasks: number): Promise<ScenarioRow> {
  const threads = availableParallelism()
  const noop = benchAgentFile('noop')
  const plan = independentPlan('bench-noop', tasks, noop, () => null)
  const piscina = new Piscina({ filename: noop, minThreads: threads, maxThreads: threads })
  // troupe's pool runs with atomics disabled (see pool.ts); this isolates that choice from troupe's own cost.
  const piscinaNoAtomics = new Piscina({ filename: noop, minThreads: threads, maxThreads: threads, atomics: 'disabled' })
  const flood = (pool: Piscina) => Promise.all(Array.from({ length: tasks }, () => pool.run(null)))
  const config = { maxParallel: threads, pool: { minThreads: threads, maxThreads: threads } }
  try {
    // A second runtime without journals shows what checkpointing costs per task.
    return await withRuntime(config, (runtime) => withRuntime({ ...config, checkpoint: { enabled: false } }, async (unjournaled) => {
      const s = await measureInterleaved(
        [
          { name: 'troupe', run: () => runToEnd(runtime, plan, { maxParallel: threads }) },
          { name: 'troupe checkpoint off', run: () => runToEnd(unjournaled, plan, { maxParallel: threads }) },
          { name: 'troupe sequential', run: () => runToEnd(runtime, plan, { maxParallel: 1 }) },
          { name: 'piscina', run: () => flood(piscina) },
          { name: 'piscina atomics disabled', run: () => flood(piscinaNoAtomics) },
        ],
        { rounds: quick ? 1 : 5 },
      )
      const troupe = s.get('troupe')!
      const raw = s.get('piscina')!
      const rawNoAtomics = s.get('piscina atomics disabled')!
      const perTaskUs = (ms: number) => round3((ms * 1000) / tasks)
      return scenarioRow({
        scenario: 'overhead',
        label: `${tasks.toLocaleString('en-US')} no-op tasks, ${threads} threads: troupe vs raw piscina (ideal)`,
        makespanMs: troupe.median,
        sequentialMs: s.get('troupe sequential')!.median,
        idealMs: raw.median,
        parallelism: threads,
        extra: {
          tasks,
          threads,
          throughputRatio: round3(raw.median / troupe.median),
          throughputRatioVsNoAtomics: round3(rawNoAtomics.median / troupe.median),
          throughputRatioCheckpointOff: round3(raw.median / s.get('troupe checkpoint off')!.median),
          goalThroughputRatio: 0.5,
          tasksPerSecond: { troupe: Math.round((tasks * 1000) / troupe.median), piscina: Math.round((tasks * 1000) / raw.median), piscinaAtomicsDisabled: Math.round((tasks * 1000) / rawNoAtomics.median) },
          perTaskUs: { troupe: perTaskUs(troupe.median), troupeCheckpointOff: perTaskUs(s.get('troupe checkpoint off')!.median), piscina: perTaskUs(raw.median), piscinaAtomicsDisabled: perTaskUs(rawNoAtomics.median), troupeOverPiscina: perTaskUs(troupe.median - raw.median) },
          samples: Object.fromEntries(s),
        },
      })
    }))
  } finally {
    await Promise.all([piscina.close({ force: true }), piscinaNoAtomics.close({ force: true })])
  }
}

/** I/O-bound work: troupe's threads vs p-queue's promises in the main thread, same concurrency. */
async function ioVsPQueue(quick: boolean): Promise<ScenarioRow> {
  const tasks = quick ? 100 : 200
  const ms = 20
  const concurrency = 10
  const plan = independentPlan('bench-io-vs-pqueue', tasks, benchAgentFile('simulated-llm'), () => ({ ms }))
  const queue = new PQueue({ concurrency })
  return withRuntime({ maxParallel: concurrency, pool: { minThreads: concurrency, maxThreads: concurrency } }, async (runtime) => {
    const s = await measureInterleaved(
      [
        { name: 'troupe', run: () => runToEnd(runtime, plan, { maxParallel: concurrency }) },
        { name: 'p-queue', run: () => Promise.all(Array.from({ length: tasks }, () => queue.add(() => sleep(ms)))) },
      ],
      { rounds: quick ? 1 : 5 },
    )
    const troupe = s.get('troupe')!
    const pqueue = s.get('p-queue')!
    return scenarioRow({
      scenario: 'overhead',
      label: `I/O ${tasks} x ${ms} ms, ${concurrency} at once: troupe vs p-queue in the main thread (ideal)`,
      makespanMs: troupe.median,
      sequentialMs: tasks * ms,
      idealMs: pqueue.median,
      parallelism: concurrency,
      extra: {
        sequentialIsNominal: `${tasks} x ${ms} ms`,
        // Each slot runs tasks/concurrency tasks one after another, so that many share the excess.
        perTaskOverheadUs: round3(((troupe.median - pqueue.median) * 1000 * concurrency) / tasks),
        samples: Object.fromEntries(s),
      },
    })
  })
}

/** Cold start: from createRuntime to the first task's COMPLETED event (threads, worker entry, agent import). */
async function timeToFirstTask(quick: boolean): Promise<Record<string, unknown>> {
  const plan = independentPlan('bench-first-task', 1, benchAgentFile('noop'), () => null)
  const bench = new Bench({ iterations: quick ? 3 : 10, time: 0, warmupIterations: 1, warmupTime: 0, throws: true })
  const journals = mkdtempSync(join(tmpdir(), 'troupe-bench-'))
  bench.add('createRuntime to first task done', async () => {
    const t0 = bench.now()
    const runtime = createRuntime({ config: { maxParallel: 1, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { dir: journals } } })
    const run = runtime.run(plan)
    const done = new Promise<void>((resolve) => run.on('task:state', (event) => event.state === 'COMPLETED' && resolve()))
    await done
    const overriddenDuration = bench.now() - t0
    await run.result
    await runtime.close()
    // Closing the runtime is not part of the start-up latency.
    return { overriddenDuration }
  }, { async: true })
  const [task] = await bench.run().finally(() => rmSync(journals, { recursive: true, force: true }))
  const result = task!.result
  if (result.state !== 'completed') throw new Error(`time-to-first-task bench ${result.state}`)
  const latency = result.latency
  return { medianMs: round3(latency.p50), madMs: round3(latency.mad), minMs: round3(latency.min), maxMs: round3(latency.max), samples: latency.samplesCount }
}

const overhead: Scenario = {
  name: 'overhead',
  description: 'per-task cost: 10,000 no-op tasks vs raw piscina, I/O-bound work vs p-queue, createRuntime to first task done',
  async run(options) {
    const noop = await noopThroughput(options.quick, options.quick ? 2_000 : 10_000)
    const io = await ioVsPQueue(options.quick)
    const firstTask = await timeToFirstTask(options.quick)
    const perTask = noop.extra!.perTaskUs as Record<string, number>
    options.log(
      `  no-op: troupe ${perTask.troupe} µs/task (checkpoint off ${perTask.troupeCheckpointOff}), raw piscina ${perTask.piscina} µs/task: ${Math.round(Number(noop.extra!.throughputRatio) * 100)} % of piscina's throughput`,
    )
    options.log(`  createRuntime to first task done: ${String(firstTask.medianMs)} ms median`)
    return [{ ...noop, extra: { ...noop.extra, createRuntimeToFirstTaskDone: firstTask } }, io]
  },
}

export default overhead
