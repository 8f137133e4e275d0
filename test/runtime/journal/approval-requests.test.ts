import { describe, expect, it } from 'vitest'
import { parseApprovalRequest } from '../../../src/runtime/journal/approval-requests.ts'
import { summarize } from '../../../src/runtime/journal/reader.ts'
import type { JournalRecord } from '../../../src/runtime/journal/records.ts'

/** Issue 24 part 2: the request file a run reads (`troupe approve`), and what the journal says is awaiting. */

const request = { id: 'r1', task: 'a', decision: 'approve', by: 'cli', at: 1 }

describe('parseApprovalRequest', () => {
  it('reads a request as troupe approve writes it', () => {
    expect(parseApprovalRequest(JSON.stringify({ ...request, decision: 'reject', reason: 'no' }))).toEqual({
      ...request,
      decision: 'reject',
      reason: 'no',
    })
  })

  it('skips a line that is not JSON', () => {
    expect(parseApprovalRequest('{"id":')).toBeUndefined()
  })

  it('skips a decision other than approve or reject', () => {
    expect(parseApprovalRequest(JSON.stringify({ ...request, decision: 'merge' }))).toBeUndefined()
  })

  it('skips a request without an id (it could not be told apart from another, or journaled as decided)', () => {
    expect(parseApprovalRequest(JSON.stringify({ ...request, id: '' }))).toBeUndefined()
  })

  it('skips a line over 16 KB', () => {
    expect(parseApprovalRequest(JSON.stringify({ ...request, reason: 'x'.repeat(20_000) }))).toBeUndefined()
  })

  it('skips a reason that is not a string', () => {
    expect(parseApprovalRequest(JSON.stringify({ ...request, reason: { toString: 1 } }))).toBeUndefined()
  })
})

describe('summarize: approvals', () => {
  const start = {
    type: 'run-start',
    runId: 'r',
    name: 'p',
    strategy: 'concurrent',
    maxParallel: 1,
    tasks: 2,
    reused: 0,
    plan: { tasks: [] },
    at: 0,
  }
  const awaiting = (task: string, at: number) => ({ type: 'approval', task, state: 'awaiting', before: 'start', at })

  it('a task whose latest approval record says awaiting, and that has not ended since, is awaiting', () => {
    const records = [
      start,
      awaiting('a', 1),
      awaiting('b', 2),
      { type: 'approval', task: 'b', state: 'approved', before: 'start', by: 'cli', request: 'q', at: 3 },
    ]
    const summary = summarize(records as JournalRecord[])
    expect([...summary.awaiting]).toEqual(['a'])
    expect([...summary.decidedRequests]).toEqual(['q'])
  })

  it('a task record after the awaiting one (cancelled with its run) ends the wait', () => {
    const cancelled = { type: 'task', id: 'a', hash: 'h', attempt: 0, at: 2, state: 'CANCELLED' }
    expect(summarize([start, awaiting('a', 1), cancelled] as JournalRecord[]).awaiting.size).toBe(0)
  })

  it('a killed run stays awaiting across a resume that has not reached the gate yet', () => {
    expect([...summarize([start, awaiting('a', 1), { ...start, at: 5 }] as JournalRecord[]).awaiting]).toEqual(['a'])
  })
})
