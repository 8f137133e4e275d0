import { describe, expect, it, vi } from 'vitest'
import { Scratchpad } from '../../../../src/runtime/coordination/scratchpad.ts'
import { isTroupeError } from '../../../../src/runtime/core/errors.ts'
import type { AttemptListener } from '../../../../src/runtime/execution/executor.ts'
import { AttemptServices } from '../../../../src/runtime/execution/redis/attempt-services.ts'
import { signService } from '../../../../src/runtime/execution/redis/job-signature.ts'
import {
  MAX_SERVICE_CALL_CHARS,
  SERVICE_ACCEPTED_EVERY_MS,
  type ServiceCall,
  type ServiceReply,
  type ServiceRequest,
} from '../../../../src/runtime/execution/redis/protocol.ts'
import { remoteServices } from '../../../../src/runtime/execution/redis/remote-services.ts'

const SECRET = 'test-secret-0123456789abcdef'
const JOB = 'run.t.1'

/** A coordinator's services with a listener whose limit `one` has a single unit; replies are collected. */
async function setUp() {
  const pad = await Scratchpad.open(undefined)
  const replies: ServiceReply[] = []
  let held = 0
  const waiting: (() => void)[] = []
  const listener = {
    scratchpad: () => pad,
    onAcquire: async (name: string, signal: AbortSignal) => {
      if (name !== 'one') throw new TypeError(`no limit named ${name}`)
      while (held > 0) await new Promise<void>((resolve) => waiting.push(resolve))
      if (signal.aborted) throw new Error('aborted')
      held++
      return () => {
        held--
        waiting.shift()?.()
      }
    },
    onClaim: () => ({ granted: true }),
    onRelease: () => undefined,
  } as unknown as AttemptListener
  const services = new AttemptServices(SECRET, (_jobId, reply) => replies.push(reply))
  const call = (n: number, request: ServiceRequest, session = 's1'): ServiceCall => ({
    type: 'service',
    call: n,
    session,
    request,
    signature: signService(SECRET, JOB, { call: n, session, request }),
  })
  const handle = (c: ServiceCall) => services.handle(JOB, 't', listener, c, JSON.stringify(c).length)
  const settled = () => new Promise((resolve) => setImmediate(resolve))
  return { pad, replies, services, call, handle, settled, held: () => held }
}

describe('AttemptServices (the coordinator taking a worker’s ctx calls)', () => {
  it('notes a scratchpad append as the attempt’s own task and answers with the note', async () => {
    const { pad, replies, call, handle, settled } = await setUp()
    handle(call(1, { op: 'scratchpad.append', text: 'hi' }))
    await settled()
    expect(pad.read().map((note) => [note.taskId, note.text])).toEqual([['t', 'hi']])
    expect(replies).toEqual([{ call: 1, value: expect.objectContaining({ taskId: 't', text: 'hi' }) }])
  })

  it('refuses a signed call sent again (a replay) with ERR_JOB_REFUSED, acting once', async () => {
    const { pad, replies, call, handle, settled } = await setUp()
    const once = call(1, { op: 'scratchpad.append', text: 'once' })
    handle(once)
    handle(once)
    await settled()
    expect(pad.size).toBe(1)
    expect(replies).toContainEqual({ call: 1, error: { code: 'ERR_JOB_REFUSED', message: 'Call 1 of this attempt was already taken' } })
  })

  it('refuses a call signed for another attempt with ERR_JOB_REFUSED', async () => {
    const { pad, replies, services, settled } = await setUp()
    const request = { op: 'scratchpad.append', text: 'moved' } as const
    const moved: ServiceCall = {
      type: 'service',
      call: 1,
      session: 's1',
      request,
      signature: signService(SECRET, 'other-run.t.1', { call: 1, session: 's1', request }),
    }
    services.handle(JOB, 't', { scratchpad: () => pad } as unknown as AttemptListener, moved, 100)
    await settled()
    expect(pad.size).toBe(0)
    expect(replies[0]).toMatchObject({ call: 1, error: { code: 'ERR_JOB_REFUSED' } })
  })

  it('refuses a call longer than MAX_SERVICE_CALL_CHARS with ERR_ARGUMENT_INVALID, unread', async () => {
    const { services, replies, pad } = await setUp()
    const call: ServiceCall = { type: 'service', call: 1, session: 's1', request: { op: 'scratchpad.append', text: 'x' } }
    services.handle(JOB, 't', { scratchpad: () => pad } as unknown as AttemptListener, call, MAX_SERVICE_CALL_CHARS + 1)
    expect(replies[0]).toMatchObject({
      call: 1,
      error: { code: 'ERR_ARGUMENT_INVALID', message: expect.stringContaining(`at most ${MAX_SERVICE_CALL_CHARS}`) },
    })
  })

  it('refuses a malformed request naming the field, the value and what is allowed', async () => {
    const { replies, call, handle } = await setUp()
    handle(call(1, { op: 'scratchpad.page', since: -1, limit: 10 }))
    expect(replies[0]).toEqual({
      call: 1,
      error: { code: 'ERR_ARGUMENT_INVALID', message: 'scratchpad.page: `since` must be an integer >= 0, got -1' },
    })
  })

  it('refuses a wait_tasks call whose ids are not a list of task ids, naming the field', async () => {
    const { replies, call, handle } = await setUp()
    handle(call(1, { op: 'wait-tasks', ids: 'kid' as unknown as string[], timeoutMs: 1_000 }))
    expect(replies[0]).toEqual({
      call: 1,
      error: { code: 'ERR_ARGUMENT_INVALID', message: 'wait-tasks: `ids` must be an array of at most 100 task ids, got "kid"' },
    })
  })

  it('refuses calls of an earlier run of the attempt once another worker started it, with ERR_CANCELLED', async () => {
    const { replies, services, call, handle } = await setUp()
    services.started(JOB, 's1', 'w1')
    services.started(JOB, 's2', 'w2')
    handle(call(1, { op: 'claim', path: 'a' }, 's1'))
    expect(replies[0]).toMatchObject({ call: 1, error: { code: 'ERR_CANCELLED' } })
  })

  it('confirms an acquire still waiting for its unit every SERVICE_ACCEPTED_EVERY_MS, so the worker keeps waiting', async () => {
    const { replies, call, handle, settled, services } = await setUp()
    // Only the confirmations' interval is faked: `settled` waits for real (setImmediate).
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    try {
      handle(call(1, { op: 'acquire', name: 'one' }))
      await settled()
      handle(call(2, { op: 'acquire', name: 'one' }))
      vi.advanceTimersByTime(2 * SERVICE_ACCEPTED_EVERY_MS)
      expect(replies.filter((reply) => reply.call === 2)).toEqual([
        { call: 2, accepted: true },
        { call: 2, accepted: true },
        { call: 2, accepted: true },
      ])
    } finally {
      services.ended(JOB)
      vi.useRealTimers()
    }
  })

  it('gives back the units a session held when the attempt starts again elsewhere', async () => {
    const { replies, services, call, handle, settled, held } = await setUp()
    services.started(JOB, 's1', 'w1')
    handle(call(1, { op: 'acquire', name: 'one' }))
    await settled()
    expect(replies).toEqual([
      { call: 1, accepted: true },
      { call: 1, value: expect.any(Number) },
    ])
    expect(held()).toBe(1)
    services.started(JOB, 's2', 'w2')
    expect(held()).toBe(0)
  })

  it('gives back the units of a worker missing from two sweeps in a row, not from one', async () => {
    const { services, call, handle, settled, held } = await setUp()
    services.started(JOB, 's1', 'w1')
    handle(call(1, { op: 'acquire', name: 'one' }))
    await settled()
    services.sweep(new Set())
    services.sweep(new Set(['w1']))
    services.sweep(new Set())
    expect(held()).toBe(1)
    services.sweep(new Set())
    expect(held()).toBe(0)
    expect(services.holding).toBe(false)
  })

  it('gives back everything the attempt held when it ends', async () => {
    const { services, call, handle, settled, held } = await setUp()
    handle(call(1, { op: 'acquire', name: 'one' }))
    await settled()
    services.ended(JOB)
    expect(held()).toBe(0)
  })
})

describe('remoteServices (the worker side of the ctx calls)', () => {
  it('refuses a message too large to send with ERR_ARGUMENT_INVALID, without calling the coordinator', async () => {
    const sent: ServiceRequest[] = []
    const services = remoteServices(async (_what, request) => sent.push(request))
    const error = await services.mailbox!()!
      .send('t', 'u', 'x'.repeat(MAX_SERVICE_CALL_CHARS))
      .catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_ARGUMENT_INVALID')).toBe(true)
    expect(sent).toEqual([])
  })

  it('reads the whole scratchpad page by page', async () => {
    const pages = [
      { notes: [{ taskId: 'a', at: 1, text: '1' }], total: 2, next: 1 },
      { notes: [{ taskId: 'b', at: 2, text: '2' }], total: 2 },
    ]
    const services = remoteServices(async (_what, request) => pages[(request as { since: number }).since])
    expect((await services.scratchpad!()!.read()).map((note) => note.text)).toEqual(['1', '2'])
  })
})
