import { benchAgentFile } from '../agent-file.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario } from '../scenario.ts'

const TASKS = 40
const LATENCY_MS = 100
const PARALLEL = 10

/** I/O-bound (simulated LLM latency): limited by slots, not cores, so the ideal speedup is 10x. */
const io: Scenario = {
  name: 'io',
  description: `${TASKS} simulated LLM agents (sleep ${LATENCY_MS} ms, no CPU) at maxParallel ${PARALLEL} vs 1`,
  async run(options) {
    const plan = independentPlan('bench-io', TASKS, benchAgentFile('simulated-llm'), () => ({ ms: LATENCY_MS }))
    // Quick: the one-slot baseline on a quarter of the tasks, scaled (it is TASKS x LATENCY_MS plus overhead).
    const slice = options.quick ? 4 : 1
    const sequentialPlan = independentPlan('bench-io-1-slot', TASKS / slice, benchAgentFile('simulated-llm'), () => ({ ms: LATENCY_MS }))
    // Ten threads so that ten simulated calls can wait at once.
    return withRuntime({ maxParallel: PARALLEL, pool: { minThreads: PARALLEL, maxThreads: PARALLEL } }, async (runtime) => {
      const summaries = await measureInterleaved(
        [
          { name: 'sequential', run: () => runToEnd(runtime, sequentialPlan, { maxParallel: 1 }) },
          { name: 'parallel', run: () => runToEnd(runtime, plan, { maxParallel: PARALLEL }) },
        ],
        { rounds: options.quick ? 1 : 5 },
      )
      const measured = summaries.get('sequential')!
      const sequential = { ...measured, median: measured.median * slice }
      const parallel = summaries.get('parallel')!
      return [
        scenarioRow({
          scenario: 'io',
          label: `${TASKS} x ${LATENCY_MS} ms simulated LLM, ${PARALLEL} slots vs 1`,
          makespanMs: parallel.median,
          sequentialMs: sequential.median,
          idealMs: sequential.median / PARALLEL,
          parallelism: PARALLEL,
          extra: {
            simulated: true,
            sequentialTasksMeasured: TASKS / slice,
            nominalIdealMs: (TASKS * LATENCY_MS) / PARALLEL,
            sequential,
            parallel,
          },
        }),
      ]
    })
  },
}

export default io
