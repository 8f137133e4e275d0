/**
 * Concurrent invocations of one run id: N `troupe run --run-id X` at once, on a fresh id and
 * on an id left by a kill -9 (stale lock). Exactly one must run; the others exit 2 with
 * ERR_RUN_LOCKED; no task runs twice. A process that starts after the winner has finished
 * finds every task done and reuses them all: counted as `nothingLeft`, not as running.
 *
 *   node --import tsx scripts/reliability/concurrent-resume.ts [rounds=3] [processes=4]
 */
import { finished, marks, sleep, startCli, workspace, writePlan } from './common.ts'

const rounds = Number(process.argv[2] ?? 3)
const processes = Number(process.argv[3] ?? 4)
const counts = () => ({ ran: 0, nothingLeft: 0, locked: 0, other: 0, roundsWithOneRunner: 0, duplicateRuns: 0 })
const totals = { rounds: 0, fresh: counts(), afterKill: counts() }

async function race(dir: string, into: typeof totals.fresh): Promise<void> {
  const before = marks(dir).length
  const results = await Promise.all(Array.from({ length: processes }, () => finished(startCli(dir, ['run', 'plan.json', '--run-id', 'X', '--quiet', '--json']))))
  let runners = 0
  for (const r of results) {
    if (r.code === 0) {
      const result = JSON.parse(r.stdout) as { totals: { tasks: number; reused: number } }
      if (result.totals.reused < result.totals.tasks) runners++
      else into.nothingLeft++
    } else if (r.code === 2 && r.stderr.includes('ERR_RUN_LOCKED')) into.locked++
    else into.other++
  }
  into.ran += runners
  if (runners === 1) into.roundsWithOneRunner++
  const ran = marks(dir).slice(before)
  into.duplicateRuns += ran.length - new Set(ran).size
}

for (let round = 0; round < rounds; round++) {
  const fresh = workspace('race')
  writePlan(fresh, 20, 4, 300)
  await race(fresh, totals.fresh)

  const killed = workspace('race-kill')
  writePlan(killed, 20, 4, 300)
  const first = startCli(killed, ['run', 'plan.json', '--run-id', 'X', '--quiet'])
  const done = finished(first)
  while (marks(killed).length < 6) await sleep(10)
  first.kill('SIGKILL')
  await done
  await race(killed, totals.afterKill)
  totals.rounds++
}

console.log(JSON.stringify({ processes, ...totals }))
