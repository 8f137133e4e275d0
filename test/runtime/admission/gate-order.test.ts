import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Gate } from '../../../src/runtime/admission/gate.ts'
import { GateLedger } from '../../../src/runtime/admission/gate-ledger.ts'
import { Limits } from '../../../src/runtime/admission/limits.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { testClock } from '../../helpers/test-clock.ts'

const agents = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')
const script = join(import.meta.dirname, '..', '..', 'fixtures', 'scripts', 'staged-limit-run.ts')
const TSX = import.meta.resolve('tsx')
const task = compilePlan({ name: 'p', tasks: [{ id: 't', agent: join(agents, 'noop.mjs'), uses: ['api'] }] }, { baseDir: agents }).tasks[0]!
const refuses: Gate = { tryAcquire: () => false, release: () => {} }

/** Runs the staged-limit plan in a child; SIGKILLs it after `ms` (a spinning event loop ignores SIGTERM). */
function runChild(strategy: string, ms: number): Promise<{ stdout: string; killed: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-gate-order-'))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, script, strategy, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, ms)
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.on('error', reject)
    child.on('close', () => {
      clearTimeout(timer)
      rmSync(dir, { recursive: true, force: true })
      resolve({ stdout, killed })
    })
  })
}

describe('gate order and rollback', () => {
  it('a later gate refusing gives the limit unit back without waking the dispatcher (regression: a wake per refusal spun forever)', () => {
    let wakes = 0
    const limits = new Limits({ api: { maxConcurrent: 1, perSecond: 1 } }, testClock(), () => wakes++)
    expect(new GateLedger('r', [limits, refuses]).admit(task)).toBe(false)
    expect(wakes).toBe(0)
    // The unit and the token came back: the task passes once the refusing gate is gone.
    expect(limits.tryAcquire('r', task)).toBe(true)
  })

  for (const strategy of ['pipeline', 'hybrid']) {
    it(`${strategy}: a stage-2 task that uses a named limit, journal on, completes (regression: 100 % CPU forever)`, async () => {
      const { stdout, killed } = await runChild(strategy, 30_000)
      expect(killed).toBe(false)
      expect(stdout.trim()).toBe('completed')
    }, 60_000)
  }
})

describe('the gate ledger', () => {
  it('records what a task holds, suspends and releases, with reasons; a release after a suspend balances', () => {
    const limits = new Limits({ api: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    const ledger = new GateLedger('r', [limits])
    expect(ledger.admit(task)).toBe(true)
    expect(ledger.entriesOf(task).map((e) => [e.status, e.reason])).toEqual([['held', 'admitted']])
    ledger.suspend(task, 'waiting for the tasks it spawned')
    expect(ledger.entriesOf(task).map((e) => e.status)).toEqual(['suspended'])
    // The unit is free while the task waits.
    expect(limits.tryAcquire('r', task)).toBe(true)
    limits.release('r', task)
    ledger.release(task, 'attempt ended')
    expect(ledger.size).toBe(0)
    // Released once, balanced: exactly one unit is free again.
    expect([limits.tryAcquire('r', task), limits.tryAcquire('r', task)]).toEqual([true, false])
  })

  it('resume is all or none: a gate not free yet leaves the task suspended', () => {
    const limits = new Limits({ api: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    const ledger = new GateLedger('r', [limits])
    ledger.admit(task)
    ledger.suspend(task, 'waiting')
    limits.tryAcquire('r', task)
    expect(ledger.resume(task, 'children ended')).toBe(false)
    expect(ledger.entriesOf(task).map((e) => e.status)).toEqual(['suspended'])
    limits.release('r', task)
    expect(ledger.resume(task, 'children ended')).toBe(true)
    expect(ledger.entriesOf(task).map((e) => [e.status, e.reason])).toEqual([['held', 'children ended']])
  })
})
