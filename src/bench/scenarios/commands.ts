import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Plan } from '../../index.ts'
import { makeAvailable, runMake, writeMakefile } from '../make.ts'
import { measureInterleaved } from '../measure.ts'
import { scenarioRow } from '../row.ts'
import { runToEnd, withRuntime } from '../runs.ts'
import { survivors } from '../survivors.ts'
import type { Scenario } from '../scenario.ts'
import { round3 } from '../stats.ts'

const TASKS = 200
const SLEEP_S = 0.2
const PARALLEL = 20
const KILLS = 500

/** A plan of `count` `command` tasks of `sleep`. */
function sleepPlan(count: number): Plan {
  return {
    name: 'bench-commands',
    agents: { sleep: { kind: 'command', run: ['sleep', String(SLEEP_S)] } },
    tasks: Array.from({ length: count }, (_, i) => ({ id: `t${i}`, agent: 'sleep' })),
  } as Plan
}

/** The baseline: the same sleeps through bare `child_process.spawn`, `PARALLEL` at a time. */
async function spawnLoop(count: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) {
      next++
      await new Promise<void>((resolve, reject) => spawn('sleep', [String(SLEEP_S)], { stdio: 'ignore' }).on('exit', () => resolve()).on('error', reject))
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker))
}


/**
 * `command` agents: process start-up overhead against a bare spawn loop at the same
 * concurrency, and the cleanup guarantee at volume (attempts killed by timeout or cancel,
 * each a shell with two grandchildren).
 */
const commands: Scenario = {
  name: 'commands',
  description: `${TASKS} command tasks (sleep ${SLEEP_S}) at maxParallel ${PARALLEL} vs a bare spawn loop; ${KILLS} killed attempts, processes left behind`,
  async run(options) {
    const kills = options.quick ? 40 : KILLS
    // The dispatcher's capacity follows the thread pool here, so the pool is sized to the slots.
    const scratch = mkdtempSync(join(tmpdir(), 'troupe-bench-make-'))
    // The peer: GNU make -j runs the same 200 independent sleeps, PARALLEL at a time.
    const targets = Array.from({ length: TASKS }, (_, i) => ({ id: `t${i}`, command: `sleep ${SLEEP_S}`, dependsOn: [] }))
    const makefile = writeMakefile(scratch, targets)
    const withMake = makeAvailable()
    return withRuntime({ maxParallel: PARALLEL, pool: { minThreads: 1, maxThreads: PARALLEL }, cancelGraceMs: 200, checkpoint: { enabled: false } }, async (runtime) => {
      const plan = sleepPlan(TASKS)
      const summaries = await measureInterleaved(
        [
          { name: 'spawn', run: () => spawnLoop(TASKS) },
          { name: 'troupe', run: () => runToEnd(runtime, plan) },
          ...(withMake ? [{ name: 'make', run: () => runMake(makefile, PARALLEL) }] : []),
        ],
        // Quick: the executor's first-use load is part of what a user pays, so no warm-up round.
        { rounds: options.quick ? 1 : 3, warmupRounds: options.quick ? 0 : 1 },
      ).finally(() => rmSync(scratch, { recursive: true, force: true }))
      const troupe = summaries.get('troupe')!
      const bare = summaries.get('spawn')!
      const make = summaries.get('make')
      const idealMs = (TASKS / PARALLEL) * SLEEP_S * 1000
      const overheadPerTaskMs = ((troupe.median - idealMs) * PARALLEL) / TASKS
      const bareOverheadPerTaskMs = ((bare.median - idealMs) * PARALLEL) / TASKS

      // Half the attempts time out, half are cancelled with their run; all are process trees.
      const mark = randomUUID()
      const tree: Plan = {
        name: 'bench-kills',
        agents: { tree: { kind: 'command', run: 'sleep 100 & sleep 100 & wait', env: { TROUPE_MARK: mark } } },
        tasks: Array.from({ length: kills / 2 }, (_, i) => ({ id: `k${i}`, agent: 'tree', timeoutMs: 100, retries: 0 })),
      } as Plan
      await runtime.run(tree).result
      // Cancelled runs of PARALLEL tasks each, cancelled once all of them run.
      for (let done = 0; done < kills / 2; done += PARALLEL) {
        const batch = { ...tree, name: `bench-cancel-${done}`, tasks: tree.tasks.slice(0, PARALLEL).map((t) => ({ ...t, timeoutMs: 60_000 })) } as Plan
        const run = runtime.run(batch)
        let started = 0
        run.on('task:state', (e) => {
          if (e.state === 'RUNNING' && ++started === PARALLEL) void run.cancel('bench')
        })
        await run.result
      }
      // SIGKILL follows SIGTERM after cancelGraceMs; give stragglers that long, then count.
      await new Promise((resolve) => setTimeout(resolve, 500))
      const left = survivors(mark).length
      const makeText = make === undefined ? 'make not found' : `make -j${PARALLEL} ${make.median.toFixed(0)} ms (troupe x${round3(troupe.median / make.median)})`
      const times = `troupe ${troupe.median.toFixed(0)} ms, spawn ${bare.median.toFixed(0)} ms, ${makeText}, ideal ${idealMs} ms`
      options.log(`commands: ${times}; ${kills} kills, ${left} processes left`)
      return [
        scenarioRow({
          scenario: 'commands',
          label: `${TASKS} x sleep ${SLEEP_S} s as command agents, ${PARALLEL} slots (ideal: ${TASKS / PARALLEL} waves)`,
          makespanMs: troupe.median,
          sequentialMs: TASKS * SLEEP_S * 1000,
          idealMs,
          parallelism: PARALLEL,
          extra: {
            sequentialNominal: true,
            spawnLoopMs: bare.median,
            ratioToSpawnLoop: troupe.median / bare.median,
            ...(make === undefined ? {} : { makeMs: make.median, ratioToMake: round3(troupe.median / make.median), goalRatioToMake: 1.05 }),
            ...(make === undefined ? {} : { make }),
            overheadPerTaskMs,
            bareOverheadPerTaskMs,
            killedAttempts: kills,
            processesLeftBehind: left,
            troupe,
            spawn: bare,
          },
        }),
        ...(make === undefined
          ? []
          : [
              scenarioRow({
                scenario: 'commands',
                label: `the same sleeps: troupe vs make -j${PARALLEL} (ideal)`,
                makespanMs: troupe.median,
                sequentialMs: TASKS * SLEEP_S * 1000,
                idealMs: make.median,
                parallelism: PARALLEL,
                extra: { sequentialNominal: true, ratioToMake: round3(troupe.median / make.median), goalRatioToMake: 1.05 },
              }),
            ]),
      ]
    })
  },
}

export default commands
