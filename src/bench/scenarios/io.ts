import { benchAgentFile } from '../agent-file.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario, ScenarioRow } from '../scenario.ts'
import { median } from '../stats.ts'

const TASKS = 40
const LATENCY_MS = 100
const PARALLEL = 10
/** The fan-out row: as many 1 s waits as slots, on a fresh runtime's default pool. */
const WIDE_TASKS = 40
const WIDE_MS = 1_000

/** I/O-bound (simulated LLM latency): limited by slots, not cores, so the ideal speedup is 10x. */
const io: Scenario = {
  name: 'io',
  description: `${TASKS} simulated LLM agents (sleep ${LATENCY_MS} ms, no CPU) at maxParallel ${PARALLEL} vs 1`,
  async run(options) {
    return [await slotsRow(options.quick), await wideRow(options.quick)]
  },
}

/** 40 calls of 100 ms on 10 slots vs 1 slot. */
function slotsRow(quick: boolean): Promise<ScenarioRow> {
  const plan = independentPlan('bench-io', TASKS, benchAgentFile('simulated-llm'), () => ({ ms: LATENCY_MS }))
    // Quick: the one-slot baseline on a quarter of the tasks, scaled (it is TASKS x LATENCY_MS plus overhead).
    const slice = quick ? 4 : 1
    const sequentialPlan = independentPlan('bench-io-1-slot', TASKS / slice, benchAgentFile('simulated-llm'), () => ({ ms: LATENCY_MS }))
    // Ten threads so that ten simulated calls can wait at once.
    return withRuntime({ maxParallel: PARALLEL, pool: { minThreads: PARALLEL, maxThreads: PARALLEL } }, async (runtime) => {
      const summaries = await measureInterleaved(
        [
          { name: 'sequential', run: () => runToEnd(runtime, sequentialPlan, { maxParallel: 1 }) },
          { name: 'parallel', run: () => runToEnd(runtime, plan, { maxParallel: PARALLEL }) },
        ],
        { rounds: quick ? 1 : 5 },
      )
      const measured = summaries.get('sequential')!
      const sequential = { ...measured, median: measured.median * slice }
      const parallel = summaries.get('parallel')!
      return scenarioRow({
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
        })
    })
}

/**
 * 40 calls of 1 s at once, each run on a fresh runtime with the default pool and the governor
 * off: nothing tells the pool that the agent waits, so this measures how soon it finds out
 * (its attempts then share threads instead of starting 40).
 */
async function wideRow(quick: boolean): Promise<ScenarioRow> {
  const plan = independentPlan('bench-io-wide', WIDE_TASKS, benchAgentFile('simulated-llm'), () => ({ ms: WIDE_MS }))
  const makespans: number[] = []
  const summaries = await measureInterleaved(
    [{ name: 'fresh runtime', run: () => withRuntime({ maxParallel: WIDE_TASKS }, async (runtime) => void makespans.push((await runToEnd(runtime, plan)).makespanMs)) }],
    { rounds: quick ? 1 : 3 },
  )
  const wall = summaries.get('fresh runtime')!
  const makespan = median(makespans)
  return scenarioRow({
    scenario: 'io',
    label: `${WIDE_TASKS} x ${WIDE_MS / 1000} s simulated LLM at once, fresh runtime, default pool, governor off`,
    makespanMs: makespan,
    sequentialMs: WIDE_TASKS * WIDE_MS,
    idealMs: WIDE_MS,
    parallelism: WIDE_TASKS,
    extra: { simulated: true, sequentialIsNominal: `${WIDE_TASKS} x ${WIDE_MS} ms`, makespans, wallWithRuntimeStartAndClose: wall },
  })
}

export default io
