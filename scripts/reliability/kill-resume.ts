/**
 * kill -9 loops: starts `troupe run --run-id R`, SIGKILLs it at a random moment, and starts
 * it again, until one invocation finishes by itself. Counts attempts (agent starts),
 * re-runs of tasks whose COMPLETED record was already in the journal when the process
 * was killed, and losses (tasks not COMPLETED in the end).
 *
 *   node --import tsx scripts/reliability/kill-resume.ts [loops=5] [tasks=40]
 */
import { join } from 'node:path'
import { summarize, readJournal } from '../../src/runtime/journal/reader.ts'
import { finished, marks, sleep, startCli, workspace, writePlan } from './common.ts'

const loops = Number(process.argv[2] ?? 5)
const tasks = Number(process.argv[3] ?? 40)
const totals = { loops: 0, kills: 0, invocations: 0, attempts: 0, rerunsOfCompleted: 0, lost: 0, unreadable: 0 }

for (let loop = 0; loop < loops; loop++) {
  const dir = workspace('kill')
  writePlan(dir, tasks, 4, 100)
  const journal = join(dir, '.troupe', 'R', 'journal.jsonl')
  let completedAtKill = new Set<string>()
  let marksAtKill = 0
  for (let invocation = 1; ; invocation++) {
    totals.invocations++
    const child = startCli(dir, ['run', 'plan.json', '--run-id', 'R', '--quiet'])
    const done = finished(child)
    // Killed at a random moment once agents have started (startup alone takes longer than the run).
    const started = marks(dir).length
    let over = false
    const begun = (async () => {
      while (!over && marks(dir).length === started) await sleep(10)
      await sleep(Math.floor(Math.random() * 800))
    })()
    const outcome = await Promise.race([done, begun.then(() => undefined)])
    over = true
    const ranSince = marks(dir).slice(marksAtKill)
    totals.rerunsOfCompleted += ranSince.filter((id) => completedAtKill.has(id)).length
    if (outcome !== undefined) {
      if (outcome.code !== 0) throw new Error(`invocation ${invocation} exited ${outcome.code}: ${outcome.stderr}`)
      break
    }
    child.kill('SIGKILL')
    await done
    totals.kills++
    marksAtKill = marks(dir).length
    try {
      const contents = readJournal(journal)
      completedAtKill = new Set([...summarize(contents?.records ?? []).tasks.values()].filter((r) => r.state === 'COMPLETED').map((r) => r.id))
    } catch {
      totals.unreadable++
      break
    }
  }
  const final = summarize(readJournal(journal)?.records ?? [])
  totals.lost += tasks - [...final.tasks.values()].filter((r) => r.state === 'COMPLETED').length
  totals.attempts += marks(dir).length
  totals.loops++
}

console.log(JSON.stringify({ tasksPerRun: tasks, ...totals }))
