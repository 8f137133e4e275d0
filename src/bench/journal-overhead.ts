/**
 * Journal overhead: the same plan of no-op tasks with the journal off and on (group commit,
 * fdatasync per group), alternating, on one runtime each. Prints tasks/s for both and the
 * cost per task of journaling.
 *
 *   npx tsx src/bench/journal-overhead.ts [tasks=20000] [rounds=3]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRuntime, type Plan } from '../index.ts'
import { benchAgentFile } from './agent-file.ts'

export interface JournalOverhead {
  readonly tasks: number
  readonly rounds: number
  /** Median tasks per second over the rounds. */
  readonly offTasksPerSecond: number
  readonly onTasksPerSecond: number
  /** Median extra wall time per task with the journal on, in microseconds. */
  readonly overheadUsPerTask: number
}

export async function journalOverhead(tasks = 20_000, rounds = 3): Promise<JournalOverhead> {
  const agent = benchAgentFile('noop')
  const plan: Plan = { name: 'journal-overhead', tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, agent })) }
  const dir = mkdtempSync(join(tmpdir(), 'troupe-journal-overhead-'))
  const timings = { off: [] as number[], on: [] as number[] }
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const runtime = createRuntime({
          config: { governor: { enabled: false }, maxQueuedTasks: tasks * 2, checkpoint: { enabled: mode === 'on', dir } },
        })
        try {
          // Warm the threads so both modes start from the same pool.
          await runtime.run({ name: 'warm', tasks: Array.from({ length: 200 }, (_, i) => ({ id: `w${i}`, agent })) }, { runId: `warm-${mode}-${round}` }).result
          const started = performance.now()
          const result = await runtime.run(plan, { runId: `${mode}-${round}` }).result
          if (result.totals.completed !== tasks) throw new Error(`only ${result.totals.completed} of ${tasks} completed`)
          timings[mode].push(performance.now() - started)
        } finally {
          await runtime.close()
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const off = median(timings.off)
  const on = median(timings.on)
  return {
    tasks,
    rounds,
    offTasksPerSecond: Math.round((tasks / off) * 1000),
    onTasksPerSecond: Math.round((tasks / on) * 1000),
    overheadUsPerTask: Math.round(((on - off) / tasks) * 1000 * 10) / 10,
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [tasks, rounds] = process.argv.slice(2).map(Number)
  process.stdout.write(`${JSON.stringify(await journalOverhead(tasks || undefined, rounds || undefined), null, 2)}\n`)
}
