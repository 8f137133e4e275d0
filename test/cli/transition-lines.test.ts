import { describe, expect, it } from 'vitest'
import { describeTransition } from '../../src/cli/run-command.ts'

const requeued = (code: 'ERR_RATE_LIMITED' | 'ERR_TASK_FAILED', attempt: number) =>
  describeTransition({
    ...{ runId: 'r', taskId: 't', agent: 'a', state: 'QUEUED', previous: 'RUNNING' },
    ...{ attempt, at: 0, error: { code, message: 'm' } },
  })

describe('run progress lines', () => {
  it('a rate-limited attempt is re-queued uncounted: no "attempt 0 failed" (regression)', () => {
    const line = requeued('ERR_RATE_LIMITED', 0)
    expect(line).toContain('re-queued')
    expect(line).toContain('ERR_RATE_LIMITED')
    expect(line).not.toMatch(/attempt \d+ failed/)
  })

  it('a failed attempt that is retried still says which attempt failed', () => {
    expect(requeued('ERR_TASK_FAILED', 1)).toContain('(attempt 1 failed)')
  })
})
