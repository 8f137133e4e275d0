import { simulate, type Strategy } from '../../index.ts'
import { loadStg } from '../data/stg.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { runToEnd, withRuntime } from '../runs.ts'
import type { Scenario, ScenarioRow } from '../scenario.ts'
import { graphBounds, referencePlan } from '../stg-plan.ts'
import { round3 } from '../stats.ts'

const WORKERS = 4
const UNIT_MS = 5
/** Where waves lose most in simulation, a hard graph, a mild case, and one where they tie. */
const GRAPHS = ['50/rand0012.stg', '50/rand0001.stg', '50/rand0101.stg', '50/rand0093.stg']
const QUICK_GRAPHS = ['50/rand0012.stg', '50/rand0093.stg']
const STRATEGIES: readonly Strategy[] = ['concurrent', 'waves']
/** Real runs jitter by a few ms; "at least as good" allows this much where simulation says they tie. */
const TIE_TOLERANCE = 0.03

/** Concurrent (critical path first, no barriers) vs waves (a barrier per dependency level), real runs. */
const strategies: Scenario = {
  name: 'strategies',
  description: `concurrent vs waves on the same STG graphs, real runs on ${WORKERS} workers (1 unit = ${UNIT_MS} ms)`,
  async run(options) {
    return withRuntime({ maxParallel: WORKERS, pool: { minThreads: WORKERS, maxThreads: WORKERS } }, async (runtime) => {
      const rows: ScenarioRow[] = []
      let warm = false
      for (const name of options.quick ? QUICK_GRAPHS : GRAPHS) {
        const graph = loadStg(options.dataDir, name)
        const plan = referencePlan(graph, UNIT_MS)
        const { work, criticalPath } = graphBounds(graph)
        const summaries = await measureInterleaved(
          STRATEGIES.map((strategy) => ({ name: strategy, run: () => runToEnd(runtime, plan, { maxParallel: WORKERS, strategy }) })),
          { rounds: options.quick ? 1 : 5, warmupRounds: warm ? 0 : 1 },
        )
        warm = true
        const simulated = new Map(STRATEGIES.map((s) => [s, simulate(graph.plan, { workers: WORKERS, strategy: s, durations: graph.durations }).makespanMs * UNIT_MS]))
        const concurrent = summaries.get('concurrent')!.median
        const waves = summaries.get('waves')!.median
        const differ = simulated.get('concurrent') !== simulated.get('waves')
        const ok = differ ? concurrent < waves : concurrent <= waves * (1 + TIE_TOLERANCE)
        for (const strategy of STRATEGIES) {
          rows.push(
            scenarioRow({
              scenario: 'strategies',
              label: `STG ${name}, ${WORKERS} workers: ${strategy}`,
              makespanMs: summaries.get(strategy)!.median,
              sequentialMs: work * UNIT_MS,
              idealMs: Math.max(criticalPath, work / WORKERS) * UNIT_MS,
              parallelism: WORKERS,
              extra: {
                simulated: true,
                unitMs: UNIT_MS,
                sequentialIsNominal: 'total work x unitMs',
                simulatedMs: simulated.get(strategy),
                concurrentVsWaves: round3(concurrent / waves),
                strategiesDifferInSimulation: differ,
                concurrentAtLeastAsGood: ok,
                samples: summaries.get(strategy),
              },
            }),
          )
        }
        options.log(`  ${name}: concurrent ${concurrent.toFixed(1)} ms vs waves ${waves.toFixed(1)} ms (simulated ${simulated.get('concurrent')} vs ${simulated.get('waves')}): ${ok ? 'ok' : 'CONCURRENT NOT BETTER'}`)
      }
      return rows
    })
  },
}

export default strategies
