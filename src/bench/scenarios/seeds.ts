import type { Plan } from '../../index.ts'
import { benchAgentFile } from '../agent-file.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { independentPlan, runToEnd, withRuntime } from '../runs.ts'
import type { Scenario, ScenarioRow } from '../scenario.ts'
import { SEED_EXAMPLES, idealMinutes, sequentialMinutes, type SeedExample } from '../seed-examples.ts'
import { round3 } from '../stats.ts'

/**
 * One seed minute lasts this many real milliseconds (1/3000 scale in the full run, 1/6000
 * quick): the 110 minutes of the multi-feature example take 2.2 s sequentially.
 */
export const MS_PER_SEED_MINUTE = { full: 20, quick: 10 } as const

const MAX_AGENTS = Math.max(...SEED_EXAMPLES.map((e) => e.agents))

export function seedPlan(example: SeedExample, msPerMinute: number): Plan {
  return {
    name: `seed-${example.name.replace(/\W+/g, '-')}`,
    strategy: example.strategy,
    agents: { llm: benchAgentFile('simulated-llm') },
    tasks: example.tasks.map((task) => ({
      id: task.id,
      agent: 'llm',
      input: { ms: task.minutes * msPerMinute },
      estimateMs: task.minutes * msPerMinute,
      ...(task.dependsOn ? { dependsOn: task.dependsOn } : {}),
      ...(task.stage ? { stage: task.stage } : {}),
    })),
  }
}

/** The seed documents' examples, with simulated agents, each vs its own sequential run. */
const seeds: Scenario = {
  name: 'seeds',
  description: "the seed documents' speedup examples with simulated agents (1 seed minute = 20 ms; 10 ms with --quick), claim beside measurement",
  async run(options) {
    const msPerMinute = options.quick ? MS_PER_SEED_MINUTE.quick : MS_PER_SEED_MINUTE.full
    return withRuntime({ maxParallel: MAX_AGENTS, pool: { minThreads: MAX_AGENTS, maxThreads: MAX_AGENTS } }, async (runtime) => {
      // Start every thread and load the agent once, so that no example pays for it.
      await runToEnd(runtime, independentPlan('seed-warmup', MAX_AGENTS, benchAgentFile('simulated-llm'), () => ({ ms: 20 })))
      const rows: ScenarioRow[] = []
      for (const example of SEED_EXAMPLES) {
        const plan = seedPlan(example, msPerMinute)
        const summaries = await measureInterleaved(
          [
            { name: 'sequential', run: () => runToEnd(runtime, plan, { maxParallel: 1 }) },
            { name: 'parallel', run: () => runToEnd(runtime, plan, { maxParallel: example.agents }) },
          ],
          { rounds: options.quick ? 1 : 5, warmupRounds: 0 },
        )
        const sequential = summaries.get('sequential')!
        const parallel = summaries.get('parallel')!
        const nominalSequential = sequentialMinutes(example)
        const nominalIdeal = idealMinutes(example)
        rows.push(
          scenarioRow({
            scenario: 'seeds',
            label: `${example.name} (${example.agents} agents, simulated)`,
            makespanMs: parallel.median,
            sequentialMs: sequential.median,
            idealMs: nominalIdeal * msPerMinute,
            parallelism: example.agents,
            claimed: example.claimed,
            extra: {
              source: example.source,
              simulated: true,
              msPerSeedMinute: msPerMinute,
              strategy: example.strategy,
              seedSequentialMinutes: nominalSequential,
              seedIdealMinutes: nominalIdeal,
              bestPossibleSpeedup: round3(nominalSequential / nominalIdeal),
              sequential,
              parallel,
            },
          }),
        )
      }
      return rows
    })
  },
}

export default seeds
