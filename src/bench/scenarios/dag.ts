import { simulate } from '../../index.ts'
import { loadStg, loadStgReferences, type StgReference } from '../data/stg.ts'
import { DatasetMissingError } from '../data/dataset.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Plan } from '../../index.ts'
import type { ReferenceGraph } from '../data/reference-graph.ts'
import { makeAvailable, runMake, writeMakefile } from '../make.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { runToEnd, withRuntime } from '../runs.ts'
import type { BenchOptions, Scenario, ScenarioRow } from '../scenario.ts'
import { graphBounds, referencePlan } from '../stg-plan.ts'
import { median, round3 } from '../stats.ts'

const WORKERS = 4
/** Easy graphs (a list schedule reaches the trivial bound) and hard ones (published best above it). */
const GRAPHS = ['50/rand0000.stg', '50/rand0001.stg', '50/rand0009.stg', '50/rand0012.stg', '50/rand0123.stg', '50/rand0130.stg']
const QUICK_GRAPHS = ['50/rand0000.stg', '50/rand0001.stg']
/** One STG time unit, in real ms. Longer units make the fixed per-task cost a smaller share. */
const UNIT_MS = { full: 20, quick: 5 } as const
/** One STG time unit as `sleep` commands (process start-up is a few ms: longer units). */
const COMMAND_UNIT_MS = 20

/**
 * STG graphs executed for real (simulated agents that wait their task's duration): the real
 * makespan against troupe's own simulated schedule and against the published optimum.
 */
const dag: Scenario = {
  name: 'dag',
  description: `Kasahara STG graphs run for real on ${WORKERS} workers vs simulate() and the published optimum`,
  async run(options) {
    const unitMs = options.quick ? UNIT_MS.quick : UNIT_MS.full
    const references = new Map(loadStgReferences(options.dataDir).filter((r) => r.procs === WORKERS).map((r) => [r.graph, r]))
    // Default pool settings: the pool sizes itself from the run (what a user gets without tuning).
    return withRuntime({ maxParallel: WORKERS }, async (runtime) => {
      const rows: ScenarioRow[] = []
      let warm = false
      for (const name of options.quick ? QUICK_GRAPHS : GRAPHS) {
        const reference: StgReference | undefined = references.get(name)
        if (reference === undefined) throw new DatasetMissingError(`no published optimum for ${name} on ${WORKERS} processors in ${options.dataDir}`)
        const graph = loadStg(options.dataDir, name)
        const plan = referencePlan(graph, unitMs)
        const simulated = simulate(graph.plan, { workers: WORKERS, durations: graph.durations }).makespanMs
        const { work, criticalPath } = graphBounds(graph)
        // Per run: the makespan troupe's schedule gives with the durations the agents really took
        // (timer overshoot included), so that dispatch delay shows apart from agent jitter.
        const replayed: number[] = []
        const runReal = async () => {
          const result = await runToEnd(runtime, plan, { maxParallel: WORKERS })
          const measured = Float64Array.from(graph.ids, (id) => result.tasks[`t${id}`]!.durationMs ?? 0)
          replayed.push(simulate(graph.plan, { workers: WORKERS, durations: measured }).makespanMs)
        }
        const summaries = await measureInterleaved([{ name: 'real', run: runReal }], {
          rounds: options.quick ? 1 : 5,
          // The first graph also starts the threads and loads the agent.
          warmupRounds: warm ? 0 : 1,
        })
        warm = true
        const real = summaries.get('real')!
        const simulatedMs = simulated * unitMs
        rows.push(
          scenarioRow({
            scenario: 'dag',
            label: `STG ${name}, ${WORKERS} workers vs published best`,
            makespanMs: real.median,
            sequentialMs: work * unitMs,
            idealMs: reference.optUpper * unitMs,
            parallelism: WORKERS,
            extra: {
              simulated: true,
              unitMs,
              sequentialIsNominal: 'total work x unitMs',
              simulatedMs,
              realVsSimulated: round3(real.median / simulatedMs),
              simulatedWithMeasuredDurationsMs: round3(median(replayed)),
              realVsSimulatedWithMeasuredDurations: round3(real.median / median(replayed)),
              goalRealVsSimulated: 1.05,
              simulatedVsPublishedBest: round3(simulated / reference.optUpper),
              optLower: reference.optLower,
              optUpper: reference.optUpper,
              provenOptimal: reference.provenOptimal,
              hard: reference.hard,
              criticalPath,
              work,
              real,
            },
          }),
        )
        options.log(
          `  ${name}: real ${real.median.toFixed(1)} ms, simulated ${simulatedMs} ms (x${round3(real.median / simulatedMs)}; x${round3(real.median / median(replayed))} vs replaying the measured durations), published best ${reference.optUpper * unitMs} ms`,
        )
      }
      const first = options.quick ? QUICK_GRAPHS[0]! : GRAPHS[0]!
      if (makeAvailable()) rows.push(await commandsVsMake(first, options, references.get(first)!))
      return rows
    })
  },
}

/** An STG graph as `sleep` command tasks: troupe vs GNU make -j with the same DAG and slots. */
async function commandsVsMake(name: string, options: BenchOptions, reference: StgReference): Promise<ScenarioRow> {
  const graph = loadStg(options.dataDir, name)
  const seconds = (i: number) => String((graph.durations[i]! * COMMAND_UNIT_MS) / 1000)
  const ids = graph.ids.map((id) => `t${id}`)
  const scratch = mkdtempSync(join(tmpdir(), 'troupe-bench-dag-make-'))
  const dependsOn = (i: number) => graph.plan.deps[i]!.map((d) => ids[d]!)
  const makefile = writeMakefile(scratch, ids.map((id, i) => ({ id, command: `sleep ${seconds(i)}`, dependsOn: dependsOn(i) })))
  const plan = commandPlan(graph, ids, seconds, dependsOn)
  const { work } = graphBounds(graph)
  try {
    return await withRuntime({ maxParallel: WORKERS, checkpoint: { enabled: false } }, async (runtime) => {
      const s = await measureInterleaved(
        [
          { name: 'troupe', run: () => runToEnd(runtime, plan, { maxParallel: WORKERS }) },
          { name: 'make', run: () => runMake(makefile, WORKERS) },
        ],
        { rounds: options.quick ? 1 : 3 },
      )
      const troupe = s.get('troupe')!
      const make = s.get('make')!
      const ratio = round3(troupe.median / make.median)
      const best = reference.optUpper * COMMAND_UNIT_MS
      const times = `troupe ${troupe.median.toFixed(0)} ms, make -j${WORKERS} ${make.median.toFixed(0)} ms (x${ratio})`
      options.log(`  ${name} as sleep commands: ${times}, published best ${best} ms`)
      return scenarioRow({
        scenario: 'dag',
        label: `STG ${name} as sleep commands, ${WORKERS} slots: troupe vs make -j${WORKERS} (ideal)`,
        makespanMs: troupe.median,
        sequentialMs: work * COMMAND_UNIT_MS,
        idealMs: make.median,
        parallelism: WORKERS,
        extra: {
          unitMs: COMMAND_UNIT_MS,
          sequentialIsNominal: 'total work x unitMs',
          ratioToMake: ratio,
          goalRatioToMake: 1.05,
          publishedBestMs: best,
          troupe,
          make,
        },
      })
    })
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

function commandPlan(
  graph: ReferenceGraph,
  ids: readonly string[],
  seconds: (i: number) => string,
  dependsOn: (i: number) => string[],
): Plan {
  return {
    name: `ref-commands-${graph.name.replace(/\W+/g, '-')}`,
    agents: { sleep: { kind: 'command', run: ['sleep', '{{input.s}}'] } },
    tasks: ids.map((id, i) => ({ id, agent: 'sleep', input: { s: seconds(i) }, estimateMs: graph.durations[i]! * COMMAND_UNIT_MS,
      dependsOn: dependsOn(i) })),
  } as Plan
}

export default dag
