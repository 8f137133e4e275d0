import { describe, expect, it } from 'vitest'
import { crashWindow } from '../../src/actors/supervision.ts'

const crash = { code: 'ERR_WORKER_EXIT', message: 'exited' } as const
const policy = { maxRestarts: 2, periodMs: 1000 }

describe('crashWindow', () => {
  it('tolerates maxRestarts crashes within the period', () => {
    const first = crashWindow([], crash, 0, policy)
    const second = crashWindow(first.crashes, crash, 10, policy)
    expect(first.stop).toBeUndefined()
    expect(second.stop).toBeUndefined()
    expect(second.crashes).toEqual([0, 10])
  })

  it('stops the run on the crash past maxRestarts', () => {
    expect(crashWindow([0, 0], crash, 0, policy).stop?.code).toBe('ERR_CRASH_LOOP')
  })

  it('forgets crashes older than the period', () => {
    const verdict = crashWindow([0], crash, 1000, { maxRestarts: 1, periodMs: 1000 })
    expect(verdict.stop).toBeUndefined()
    expect(verdict.crashes).toEqual([1000])
  })

  it('ignores failures that are not crashes', () => {
    const none = { maxRestarts: 0, periodMs: 1000 }
    expect(crashWindow([], { code: 'ERR_TASK_FAILED', message: 'threw' }, 0, none)).toEqual({ crashes: [] })
    expect(crashWindow([], { code: 'ERR_TASK_TIMEOUT', message: 'slow' }, 0, none)).toEqual({ crashes: [] })
  })
})
