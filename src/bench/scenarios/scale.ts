import { availableParallelism } from 'node:os'
import { analyzePlan, compilePlan } from '../../index.ts'
import { benchAgentFile } from '../agent-file.ts'
import { randomDagPlan } from '../random-dag.ts'
import { scenarioRow } from '../row.ts'
import { runToEnd, withRuntime } from '../runs.ts'
import type { Scenario } from '../scenario.ts'
import { round3 } from '../stats.ts'

/** Goals from the scheduling issue. */
const GOALS = { analysisMs: 1000, tasksPerSecond: 5000, peakRssMb: 1024 } as const

/**
 * One runtime, one random DAG of 100,000 no-op tasks (about 3 edges per task; 10,000 with
 * `--quick`): validation (compilePlan), analysis (analyzePlan: levels, critical path, two
 * simulated schedules), then a real run to completion. Reports tasks/s end to end and the
 * process's peak RSS sampled during the scenario (worker threads included: they share the
 * process). No-op tasks are latency-bound, so each worker gets two tasks in flight.
 */
const scenario: Scenario = {
  name: 'scale',
  description: 'a random DAG of 100,000 no-op tasks: validation and analysis time, end-to-end tasks/s, peak RSS',
  async run(options) {
    const tasks = options.quick ? 10_000 : 100_000
    const threads = availableParallelism()
    const maxParallel = threads * 2
    let peakRss = process.memoryUsage().rss
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 25)
    try {
      // The plan object and the analysis are the bench's, not the run's: neither outlives this step,
      // so the peak RSS measured below is the run's (the compiled plan it needs included).
      const { compiled, validateMs, analysisMs, edges, levels } = validateAndAnalyse(tasks, maxParallel)
      let at = performance.now()
      const times = `validated in ${validateMs.toFixed(0)} ms, analysed in ${analysisMs.toFixed(0)} ms`
      options.log(`  ${tasks} tasks, ${edges} edges, ${levels} levels: ${times}`)
      const { runMs, sequentialMs } = await withRuntime(
        { maxParallel, maxQueuedTasks: tasks * 2, pool: { minThreads: threads, maxThreads: threads, concurrentTasksPerWorker: 2 }, checkpoint: { enabled: false } },
        async (runtime) => {
          // Warm-up: threads started and the agent module loaded before the clock starts.
          await runToEnd(runtime, compilePlan(randomDagPlan({ tasks: 1000, edgesPerTask: 3, agent: benchAgentFile('noop'), name: 'scale-warm-up' })))
          at = performance.now()
          await runToEnd(runtime, compiled)
          const runMs = performance.now() - at
          options.log(`  run: ${runMs.toFixed(0)} ms, ${((tasks / runMs) * 1000).toFixed(0)} tasks/s`)
          // The one-slot baseline, on a tenth of the plan (the cost per task is what matters).
          const slice = compilePlan(randomDagPlan({ tasks: tasks / 10, edgesPerTask: 3, agent: benchAgentFile('noop') }))
          at = performance.now()
          await runToEnd(runtime, slice, { maxParallel: 1 })
          return { runMs, sequentialMs: (performance.now() - at) * 10 }
        },
      )
      clearInterval(sampler)
      const tasksPerSecond = (tasks / runMs) * 1000
      const peakRssMb = peakRss / 2 ** 20
      options.log(`  peak RSS ${peakRssMb.toFixed(0)} MB`)
      return [
        scenarioRow({
          scenario: 'scale',
          label: `${tasks.toLocaleString('en-US')}-task random DAG, no-op agents, ${threads} threads (ideal: ${GOALS.tasksPerSecond} tasks/s)`,
          makespanMs: runMs,
          sequentialMs,
          idealMs: (tasks / GOALS.tasksPerSecond) * 1000,
          parallelism: maxParallel,
          extra: {
            tasks,
            edges,
            levels,
            validateMs: round3(validateMs),
            analysisMs: round3(analysisMs),
            tasksPerSecond: round3(tasksPerSecond),
            peakRssMb: round3(peakRssMb),
            goals: GOALS,
            met: {
              analysis: analysisMs < GOALS.analysisMs,
              throughput: tasksPerSecond >= GOALS.tasksPerSecond,
              memory: peakRssMb < GOALS.peakRssMb,
            },
          },
        }),
      ]
    } finally {
      clearInterval(sampler)
    }
  },
}

function validateAndAnalyse(tasks: number, maxParallel: number) {
  const plan = randomDagPlan({ tasks, edgesPerTask: 3, agent: benchAgentFile('noop'), name: `scale-${tasks}` })
  let at = performance.now()
  const compiled = compilePlan(plan)
  const validateMs = performance.now() - at
  at = performance.now()
  const analysis = analyzePlan(compiled, { maxParallel })
  const analysisMs = performance.now() - at
  return { compiled, validateMs, analysisMs, edges: analysis.dependencies, levels: analysis.levels.length }
}

export default scenario
