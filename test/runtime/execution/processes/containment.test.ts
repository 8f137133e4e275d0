import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isAlive } from '../../../../src/runtime/execution/processes/process-tree.ts'
import { runCli } from '../../../helpers/cli.ts'
import { killTrial, startAndKill, TRIAL_TASKS } from '../../../helpers/kill-trial.ts'

/**
 * kill -9 of `troupe run` with process agents (issue 21 item 1). The 10-trial version is
 * scripts/reliability/kill-containment.ts; here a few trials keep the suite's time down.
 */

let dir: string

function workspace(): string {
  dir = mkdtempSync(join(tmpdir(), 'troupe-contain-'))
  writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 500 }))
  return dir
}

afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('kill -9 of troupe run, then resume', () => {
  it('leaves no agent process running 2 s after the resume starts, and runs no task twice', { timeout: 180_000 }, async () => {
    workspace()
    for (let trial = 0; trial < 3; trial++) {
      rmSync(join(dir, '.troupe'), { recursive: true, force: true })
      rmSync(join(dir, 'marks.txt'), { force: true })
      const outcome = await killTrial(dir, `kill-${trial}`, { delayMs: Math.floor(Math.random() * 1_500), workMs: 4_000 })
      expect(outcome.leftAfterResume, `trial ${trial}: processes left`).toBe(0)
      expect(outcome.goneAfterMs, `trial ${trial}: all gone within 2 s of the resume`).toBeDefined()
      expect(outcome.resume.code, outcome.resume.stderr).toBe(0)
      for (const task of TRIAL_TASKS) expect(outcome.executions[task], `trial ${trial}: executions of ${task}`).toBe(1)
    }
  })

  it('resume kills the orphans recorded in the process ledger when the supervisor is gone too', { timeout: 120_000 }, async () => {
    workspace()
    // Here the resume alone must find them: it starts as slowly as the machine loads the CLI, so it gets 20 s.
    const outcome = await killTrial(dir, 'no-supervisor', { delayMs: 200, workMs: 20_000, killSupervisor: true, watchMs: 20_000 })
    // The orphans were there (nothing else stopped them) …
    expect(outcome.leftAtKill).toBeGreaterThanOrEqual(5)
    // … and the resume killed them before running the tasks again.
    expect(outcome.leftAfterResume).toBe(0)
    expect(outcome.resume.code, outcome.resume.stderr).toBe(0)
    for (const task of TRIAL_TASKS) expect(outcome.executions[task], `executions of ${task}`).toBe(1)
  })

  it('troupe clean kills what a killed run left running', { timeout: 120_000 }, async () => {
    workspace()
    execFileSync('git', ['init', '-q'], { cwd: dir })
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'init'], { cwd: dir })
    const left = await startAndKill(dir, 'cleaned', { delayMs: 100, workMs: 20_000, killSupervisor: true })
    expect(left.length).toBeGreaterThanOrEqual(5)
    const clean = await runCli(['clean'], { cwd: dir })
    expect(clean.code, clean.stderr).toBe(0)
    expect(clean.stderr).toMatch(/killed \d+ processes left running by killed runs/)
    expect(left.filter(isAlive)).toEqual([])
  })
})
