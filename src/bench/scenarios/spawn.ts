import { availableParallelism } from 'node:os'
import { benchAgentFile } from '../agent-file.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario } from '../scenario.ts'
import { round3 } from '../stats.ts'

/**
 * Dynamic fan-out: one task adds 1,000 no-op tasks to its run with `ctx.spawn` (once without
 * waiting, once waiting for them with its slot given back), against the same 1,000 tasks
 * written in a static plan. What adding tasks at run time costs, as tasks/s.
 */
const scenario: Scenario = {
  name: 'spawn',
  description: 'fan-out of 1,000 no-op tasks through ctx.spawn (with and without wait) vs the same tasks in a static plan: tasks/s',
  async run(options) {
    const tasks = options.quick ? 200 : 1000
    const threads = availableParallelism()
    const noop = benchAgentFile('noop')
    const fanOut = (wait: boolean) => ({
      name: `bench-spawn-${wait ? 'wait' : 'nowait'}`,
      agents: { spawner: benchAgentFile('spawner'), noop },
      tasks: [{ id: 'lead', agent: 'spawner', input: { n: tasks, agent: 'noop', wait } }],
    })
    const staticPlan = independentPlan('bench-spawn-static', tasks, noop, () => null)
    const config = { maxParallel: threads, maxQueuedTasks: tasks * 4, pool: { minThreads: threads, maxThreads: threads } }
    return withRuntime(config, async (runtime) => {
      const s = await measureInterleaved(
        [
          { name: 'static plan', run: () => runToEnd(runtime, staticPlan, { maxParallel: threads }) },
          { name: 'static plan sequential', run: () => runToEnd(runtime, staticPlan, { maxParallel: 1 }) },
          { name: 'ctx.spawn', run: () => runToEnd(runtime, fanOut(false), { maxParallel: threads }) },
          { name: 'ctx.spawn wait', run: () => runToEnd(runtime, fanOut(true), { maxParallel: threads }) },
        ],
        { rounds: options.quick ? 1 : 5 },
      )
      const perSecond = (name: string) => Math.round((tasks * 1000) / s.get(name)!.median)
      const statics = s.get('static plan')!.median
      const spawned = s.get('ctx.spawn')!.median
      return [
        scenarioRow({
          scenario: 'spawn',
          label: `${tasks.toLocaleString('en-US')} no-op tasks added by ctx.spawn vs written in the plan (ideal), ${threads} threads`,
          makespanMs: spawned,
          sequentialMs: s.get('static plan sequential')!.median,
          idealMs: statics,
          parallelism: threads,
          extra: {
            tasks,
            tasksPerSecond: { staticPlan: perSecond('static plan'), spawn: perSecond('ctx.spawn'), spawnWait: perSecond('ctx.spawn wait') },
            ratioToStatic: { spawn: round3(statics / spawned), spawnWait: round3(statics / s.get('ctx.spawn wait')!.median) },
            samples: Object.fromEntries(s),
          },
        }),
      ]
    })
  },
}

export default scenario
