import { availableParallelism } from 'node:os'
import { benchAgentFile } from '../agent-file.ts'
import { calibrateRounds } from '../calibrate.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario } from '../scenario.ts'
import { median, round3 } from '../stats.ts'

const TASKS = 16
const TASK_MS = 50

/** CPU-bound: the physical limit is one task per core, so the ideal speedup is the core count. */
const cpu: Scenario = {
  name: 'cpu',
  description: `${TASKS} independent CPU-bound tasks of ~${TASK_MS} ms (real hashing) at maxParallel = cores vs 1`,
  async run(options) {
    const cores = availableParallelism()
    const rounds = calibrateRounds(TASK_MS)
    // Quick: half the tasks (still 8 per core on 2 cores: the cores, not the task count, bound the speedup).
    const tasks = options.quick ? TASKS / 2 : TASKS
    const plan = independentPlan('bench-cpu', tasks, benchAgentFile('busy-hash'), () => ({ rounds }))
    return withRuntime({ maxParallel: cores, pool: { minThreads: cores, maxThreads: cores } }, async (runtime) => {
      const taskMs: number[] = []
      const summaries = await measureInterleaved(
        [
          {
            name: 'sequential',
            run: async () => {
              const result = await runToEnd(runtime, plan, { maxParallel: 1 })
              taskMs.push(median(Object.values(result.tasks).map((t) => t.durationMs ?? 0)))
            },
          },
          { name: 'parallel', run: () => runToEnd(runtime, plan, { maxParallel: cores }) },
        ],
        { rounds: options.quick ? 2 : 7 },
      )
      const sequential = summaries.get('sequential')!
      const parallel = summaries.get('parallel')!
      return [
        scenarioRow({
          scenario: 'cpu',
          label: `${tasks} x ${TASK_MS} ms hash, ${cores} threads vs 1`,
          makespanMs: parallel.median,
          sequentialMs: sequential.median,
          idealMs: sequential.median / cores,
          parallelism: cores,
          extra: { cores, hashRounds: rounds, taskMsMedian: round3(median(taskMs)), goalSpeedup: round3(0.95 * cores), sequential, parallel },
        }),
      ]
    })
  },
}

export default cpu
