import { availableParallelism } from 'node:os'
import type { Plan, Runtime, TaskStateEvent, TroupeConfig } from '../../index.ts'
import { benchAgentFile } from '../agent-file.ts'
import { calibrateRounds } from '../calibrate.ts'
import { scenarioRow } from '../row.ts'
import { runToEnd, withRuntime } from '../runs.ts'
import type { Scenario } from '../scenario.ts'
import { median, round3 } from '../stats.ts'

const FULL = { cpuTasks: 16, ioTasks: 64, cpuMs: 200, ioMs: 500, tuned: [16, 32, 64] } as const
/** `--quick`: a quarter of the work (the runs at low maxParallel are the long ones). */
const QUICK = { cpuTasks: 8, ioTasks: 16, cpuMs: 100, ioMs: 250, tuned: [16] } as const

/**
 * Mixed work, the governor's case: CPU-bound tasks (real hashing) and I/O-bound ones (a
 * simulated LLM call that only waits) in one plan. Default settings (governor on) vs the
 * governor off at its default maxParallel and at the best hand-tuned one; each in a fresh
 * runtime, so the governor starts knowing nothing of the agents. Peak oversubscription:
 * the most CPU-bound tasks running at once, per core.
 */
const mixed: Scenario = {
  name: 'mixed',
  description: `${FULL.cpuTasks} CPU-bound (~${FULL.cpuMs} ms hash) + ${FULL.ioTasks} I/O-bound (${FULL.ioMs} ms wait) tasks: governor default vs off vs best hand-tuned maxParallel`,
  async run(options) {
    const { cpuTasks: CPU_TASKS, ioTasks: IO_TASKS, cpuMs: CPU_MS, ioMs: IO_MS, tuned: TUNED } = options.quick ? QUICK : FULL
    const cores = availableParallelism()
    const rounds = calibrateRounds(CPU_MS)
    const plan: Plan = {
      name: 'bench-mixed',
      agents: { hash: benchAgentFile('busy-hash'), llm: benchAgentFile('simulated-llm') },
      tasks: [
        ...Array.from({ length: CPU_TASKS }, (_, i) => ({ id: `cpu-${i}`, agent: 'hash', input: { rounds } })),
        ...Array.from({ length: IO_TASKS }, (_, i) => ({ id: `io-${i}`, agent: 'llm', input: { ms: IO_MS } })),
      ],
    }
    const repeats = options.quick ? 1 : 3
    const measure = async (config: TroupeConfig) => {
      const makespans: number[] = []
      const peaks: number[] = []
      for (let r = 0; r < repeats; r++) {
        await withRuntime(config, async (runtime) => {
          const peak = watchCpuPeak(runtime)
          const result = await runToEnd(runtime, plan)
          makespans.push(result.makespanMs)
          peaks.push(peak())
        })
      }
      return { makespanMs: median(makespans), oversubscription: round3(Math.max(...peaks) / cores) }
    }
    // withRuntime turns the governor off unless told otherwise: say "on" (the default of createRuntime).
    const governed = await measure({ governor: { enabled: true } })
    const offDefault = await measure({ governor: { enabled: false } })
    const tuned: Record<number, { makespanMs: number; oversubscription: number }> = {}
    for (const maxParallel of new Set([cores * 2, ...TUNED])) tuned[maxParallel] = await measure({ governor: { enabled: false }, maxParallel })
    const [bestMax, best] = Object.entries(tuned).sort((a, b) => a[1].makespanMs - b[1].makespanMs)[0]!
    const cpuWorkMs = (CPU_TASKS * CPU_MS) / cores
    const idealMs = Math.max(cpuWorkMs, IO_MS)
    return [
      scenarioRow({
        scenario: 'mixed',
        label: `${CPU_TASKS} cpu + ${IO_TASKS} io, governor default vs off (maxParallel ${cores}) vs best tuned (${bestMax})`,
        makespanMs: governed.makespanMs,
        sequentialMs: CPU_TASKS * CPU_MS + IO_TASKS * IO_MS,
        idealMs,
        parallelism: cores,
        extra: {
          cores,
          governed,
          offDefault,
          tuned,
          bestTunedMaxParallel: Number(bestMax),
          ratioGovernedToOff: round3(governed.makespanMs / offDefault.makespanMs),
          ratioGovernedToBestTuned: round3(governed.makespanMs / best.makespanMs),
        },
      }),
    ]
  },
}

/** The most tasks of agent `hash` RUNNING at once, from task:state events. */
function watchCpuPeak(runtime: Runtime): () => number {
  let running = 0
  let peak = 0
  runtime.on('task:state', (e: TaskStateEvent) => {
    if (e.agent !== 'hash') return
    if (e.state === 'RUNNING') peak = Math.max(peak, ++running)
    else if (e.previous === 'RUNNING') running--
  })
  return () => peak
}

export default mixed
