/**
 * Containment under kill -9 (issue 21 item 1): `trials` times, `troupe run` with three
 * process agents (`sleep`, a bash with two background sleeps, a module agent's `ctx.exec`)
 * is SIGKILLed at a random moment once they all run, then run again with the same id.
 * Counts the killed invocation's processes alive 2 s after the resume started, and tasks
 * whose work completed more than once. With `--no-supervisor` the supervisor is killed
 * first, so only the process ledger and the environment tag are left to the resume
 * (which then gets 20 s, since it starts only as fast as the machine loads the CLI).
 *
 *   node --import tsx scripts/reliability/kill-containment.ts [trials=10] [--no-supervisor]
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { killTrial, TRIAL_TASKS } from '../../test/helpers/kill-trial.ts'
import { workspace } from './common.ts'

const trials = Number(process.argv[2] ?? 10)
const killSupervisor = process.argv.includes('--no-supervisor')
const totals = { trials: 0, leftAtKill: 0, leftAfterResume: 0, slowestGoneMs: 0, executedTwice: 0, notCompleted: 0, resumeFailed: 0 }
const dir = workspace('contain')

for (let trial = 0; trial < trials; trial++) {
  rmSync(join(dir, '.troupe'), { recursive: true, force: true })
  rmSync(join(dir, 'marks.txt'), { force: true })
  const workMs = killSupervisor ? 20_000 : 4_000
  const outcome = await killTrial(dir, `t${trial}`, { delayMs: Math.floor(Math.random() * 1_500), workMs, killSupervisor, watchMs: killSupervisor ? 20_000 : 2_000 })
  totals.trials++
  totals.leftAtKill += outcome.leftAtKill
  totals.leftAfterResume += outcome.leftAfterResume
  totals.slowestGoneMs = Math.max(totals.slowestGoneMs, outcome.goneAfterMs ?? Number.POSITIVE_INFINITY)
  if (outcome.resume.code !== 0) totals.resumeFailed++
  for (const task of TRIAL_TASKS) {
    if (outcome.executions[task]! > 1) totals.executedTwice++
    if (outcome.executions[task] === 0) totals.notCompleted++
  }
  console.error(`trial ${trial}: ${JSON.stringify({ ...outcome, resume: outcome.resume.code })}`)
}

console.log(JSON.stringify({ killSupervisor, ...totals }))
rmSync(dir, { recursive: true, force: true })
