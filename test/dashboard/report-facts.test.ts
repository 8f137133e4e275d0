import { describe, expect, it } from 'vitest'
import { snapshotFromResult } from '../../src/dashboard/report.ts'
import { MAX_SHOWN_MESSAGES } from '../../src/monitor/run-facts.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'

/** A finished run's result with two tasks, `fixed` repaired twice. */
function result(): RunResult {
  const task = { state: 'COMPLETED', attempts: 1, startedAt: 0, finishedAt: 10, durationMs: 10 }
  const repairs = [
    { attempt: 1, reason: 'check', detail: 'first\u001b[0m' },
    { attempt: 1, reason: 'conflict', detail: 'CONFLICT (content): a.txt' },
  ]
  return {
    runId: 'r',
    name: 'n',
    strategy: 'concurrent',
    status: 'completed',
    maxParallel: 2,
    startedAt: 0,
    finishedAt: 10,
    makespanMs: 10,
    sequentialMs: 20,
    speedup: 2,
    tasks: { fixed: { ...task, repairs }, plain: task },
  } as unknown as RunResult
}

describe('snapshotFromResult: repairs and messages', () => {
  it("gives a repaired task its repairs, numbered, details sanitised, and none to the others", () => {
    const tasks = snapshotFromResult(result()).runs[0]!.tasks
    expect(tasks.find((t) => t.id === 'fixed')!.repairs).toEqual([
      { number: 1, attempt: 1, reason: 'check', detail: 'first�[0m' },
      { number: 2, attempt: 1, reason: 'conflict', detail: 'CONFLICT (content): a.txt' },
    ])
    expect(tasks.find((t) => t.id === 'plain')!.repairs).toBeUndefined()
  })

  it('shapes the messages it is given again (newest kept, count of the left-out ones added up), and has none without', () => {
    expect(snapshotFromResult(result()).runs[0]!.messages).toBeUndefined()
    const given = Array.from({ length: MAX_SHOWN_MESSAGES + 1 }, (_, i) => ({ from: 'a', to: 'b', at: i, text: `m${i}\u202e` }))
    const run = snapshotFromResult(result(), { messages: { messages: given, omitted: 5 } }).runs[0]!
    expect(run.messages!.omitted).toBe(6)
    expect(run.messages!.messages.at(-1)).toEqual({ from: 'a', to: 'b', at: MAX_SHOWN_MESSAGES, text: `m${MAX_SHOWN_MESSAGES}�` })
  })
})
