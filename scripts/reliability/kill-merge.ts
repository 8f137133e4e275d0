/**
 * kill -9 during merge and verify (issue 21 item 3): `runs` times, a plan of worktree
 * tasks (one whose work never passes verify) is run with `troupe run`, SIGKILLed at a
 * random moment `kills` times, then run to the end. Counts tasks merged more than once,
 * completed tasks not merged, and merges of the failing task.
 *
 *   node --import tsx scripts/reliability/kill-merge.ts [runs=4] [kills per run=5] [tasks=4]
 */
import { mergeTrial } from '../../test/helpers/merge-trial.ts'

const runs = Number(process.argv[2] ?? 4)
const kills = Number(process.argv[3] ?? 5)
const tasks = Number(process.argv[4] ?? 4)
const totals = { runs: 0, kills: 0, mergedTwice: 0, completedNotMerged: 0, failedButMerged: 0, notCompleted: 0 }

for (let run = 0; run < runs; run++) {
  const trial = await mergeTrial(tasks, kills, 6_000)
  totals.runs++
  totals.kills += trial.kills
  for (const [id, count] of Object.entries(trial.merges)) {
    const state = trial.states[id]
    if (count > 1) totals.mergedTwice++
    if (state === 'COMPLETED' && count === 0) totals.completedNotMerged++
    if (state !== 'COMPLETED' && count > 0) totals.failedButMerged++
    if (id !== 'bad' && state !== 'COMPLETED') totals.notCompleted++
  }
  console.error(`run ${run}: ${JSON.stringify(trial)}`)
}

console.log(JSON.stringify({ tasksPerRun: tasks + 1, ...totals }))
