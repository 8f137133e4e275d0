import { describe, expect, it } from 'vitest'
import { Supervisor } from '../../src/actors/supervisor.ts'

const crash = { code: 'ERR_WORKER_EXIT', message: 'exited' } as const

describe('Supervisor', () => {
  it('tolerates maxRestarts crashes within the period', () => {
    const supervisor = new Supervisor({ maxRestarts: 2, periodMs: 1000 }, () => 0)
    expect(supervisor.attemptFailed(crash)).toBeUndefined()
    expect(supervisor.attemptFailed(crash)).toBeUndefined()
  })

  it('stops the run on the crash past maxRestarts', () => {
    const supervisor = new Supervisor({ maxRestarts: 2, periodMs: 1000 }, () => 0)
    supervisor.attemptFailed(crash)
    supervisor.attemptFailed(crash)
    expect(supervisor.attemptFailed(crash)?.code).toBe('ERR_CRASH_LOOP')
  })

  it('forgets crashes older than the period', () => {
    let now = 0
    const supervisor = new Supervisor({ maxRestarts: 1, periodMs: 1000 }, () => now)
    supervisor.attemptFailed(crash)
    now = 1000
    expect(supervisor.attemptFailed(crash)).toBeUndefined()
    expect(supervisor.recentCrashes).toBe(1)
  })

  it('ignores failures that are not crashes', () => {
    const supervisor = new Supervisor({ maxRestarts: 0, periodMs: 1000 }, () => 0)
    expect(supervisor.attemptFailed({ code: 'ERR_TASK_FAILED', message: 'threw' })).toBeUndefined()
    expect(supervisor.attemptFailed({ code: 'ERR_TASK_TIMEOUT', message: 'slow' })).toBeUndefined()
  })
})
