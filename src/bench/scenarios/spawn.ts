import { benchAgentFile } from '../agent-file.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario } from '../scenario.ts'
import { round3 } from '../stats.ts'

/** Each task: a simulated call that waits this long (no CPU), so that running them at once pays. */
const TASK_MS = 2
const PARALLEL = 8

/**
 * Dynamic fan-out: one task adds 1,000 short simulated calls to its run with `ctx.spawn` (once
 * without waiting, once waiting for them with its slot given back), against the same 1,000
 * tasks written in a static plan; sequential is the static plan one at a time. What adding
 * tasks at run time costs, as tasks/s. (No-op tasks, as before, made a noisy verdict: the
 * dispatch thread bounds them, so running them at once hardly beats one at a time.)
 */
const scenario: Scenario = {
  name: 'spawn',
  description: `fan-out of 1,000 simulated ${TASK_MS} ms calls through ctx.spawn (with and without wait) vs the same tasks in a static plan: tasks/s`,
  async run(options) {
    const tasks = options.quick ? 200 : 1000
    const threads = PARALLEL
    const call = benchAgentFile('simulated-llm')
    const input = { ms: TASK_MS }
    const fanOut = (wait: boolean) => ({
      name: `bench-spawn-${wait ? 'wait' : 'nowait'}`,
      agents: { spawner: benchAgentFile('spawner'), call },
      tasks: [{ id: 'lead', agent: 'spawner', input: { n: tasks, agent: 'call', wait, input } }],
    })
    const staticPlan = independentPlan('bench-spawn-static', tasks, call, () => input)
    // The default pool: the calls wait, so they share threads once the pool has seen one.
    const config = { maxParallel: threads, maxQueuedTasks: tasks * 4 }
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
          label: `${tasks.toLocaleString('en-US')} ${TASK_MS} ms calls added by ctx.spawn vs written in the plan (ideal), ${threads} at once`,
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
