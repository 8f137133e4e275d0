import { describe, expect, it } from 'vitest'
import { createActor } from 'xstate'
import { taskMachine, type TaskState } from '../../src/actors/task-machine.ts'

/** A task actor on a hand-driven clock. The machine is pure: tests send it every event. */
function start(options: { maxAttempts?: number; timeoutMs?: number; retryDelay?: (attempt: number) => number } = {}) {
  let now = 1000
  const actor = createActor(taskMachine, {
    input: {
      maxAttempts: options.maxAttempts ?? 1,
      timeoutMs: options.timeoutMs ?? 1000,
      env: { now: () => now, retryDelay: options.retryDelay ?? ((attempt) => 100 * attempt) },
    },
  })
  const states: TaskState[] = []
  actor.subscribe((s) => {
    if (states.at(-1) !== s.value) states.push(s.value as TaskState)
  })
  actor.start()
  const advance = (ms: number) => (now += ms)
  const run = () => {
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
  }
  return { actor, states, advance, run }
}

const state = (actor: { getSnapshot(): { value: unknown } }) => actor.getSnapshot().value
const context = (actor: ReturnType<typeof start>['actor']) => actor.getSnapshot().context

describe('task machine', () => {
  it('starts PENDING', () => {
    expect(state(start().actor)).toBe('PENDING')
  })

  it('goes PENDING → QUEUED → RUNNING → COMPLETED with the output', () => {
    const { actor, states, run } = start()
    run()
    actor.send({ type: 'SUCCEED', output: { ok: 1 } })
    expect(states).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED'])
    expect(context(actor).output).toEqual({ ok: 1 })
  })

  it('numbers attempts from 1', () => {
    const { actor, run } = start()
    run()
    expect(context(actor).attempt).toBe(1)
  })

  it('ignores START while PENDING', () => {
    const { actor } = start()
    actor.send({ type: 'START' })
    expect(state(actor)).toBe('PENDING')
  })

  it('ignores an outcome while not RUNNING', () => {
    const { actor } = start()
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'SUCCEED', output: 1 })
    expect(state(actor)).toBe('QUEUED')
  })

  it('fails with the attempt error when no retries are left', () => {
    const { actor, run } = start()
    run()
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'boom' } })
    expect(state(actor)).toBe('FAILED')
    expect(context(actor).error).toEqual({ code: 'ERR_TASK_FAILED', message: 'boom' })
  })

  it('goes back to QUEUED with a backoff delay when retries are left', () => {
    const { actor, run } = start({ maxAttempts: 3 })
    run()
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'flaky' } })
    expect(state(actor)).toBe('QUEUED')
    expect(context(actor).notBefore).toBe(1100)
    actor.send({ type: 'START' })
    expect(context(actor).attempt).toBe(2)
  })

  it('asks the retry policy for the delay after the attempt that failed', () => {
    const { actor, run } = start({ maxAttempts: 3, retryDelay: (attempt) => attempt * 7 })
    run()
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'x' } })
    actor.send({ type: 'START' })
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'x' } })
    expect(context(actor).notBefore).toBe(1014)
  })

  it('fails for good after the last attempt', () => {
    const { actor, run } = start({ maxAttempts: 2 })
    run()
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'one' } })
    actor.send({ type: 'START' })
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'two' } })
    expect(state(actor)).toBe('FAILED')
    expect(context(actor)).toMatchObject({ attempt: 2, error: { message: 'two' } })
  })

  it('does not retry an error marked not retryable, and drops the mark from the record', () => {
    const { actor, run } = start({ maxAttempts: 3 })
    run()
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'fatal', retryable: false } })
    expect(state(actor)).toBe('FAILED')
    expect(context(actor).error).toEqual({ code: 'ERR_TASK_FAILED', message: 'fatal' })
  })

  it.each(['ERR_AGENT_LOAD', 'ERR_OUTPUT_NOT_CLONEABLE'] as const)('does not retry %s', (code) => {
    const { actor, run } = start({ maxAttempts: 3 })
    run()
    actor.send({ type: 'FAIL', error: { code, message: 'x' } })
    expect(state(actor)).toBe('FAILED')
  })

  it('fails a timed-out attempt with ERR_TASK_TIMEOUT naming the limit', () => {
    const { actor, run } = start({ timeoutMs: 300 })
    run()
    actor.send({ type: 'TIMEOUT' })
    expect(state(actor)).toBe('FAILED')
    expect(context(actor).error).toEqual({ code: 'ERR_TASK_TIMEOUT', message: 'Attempt 1 timed out after 300 ms' })
  })

  it('retries a timed-out attempt when retries are left', () => {
    const { actor, run } = start({ timeoutMs: 300, maxAttempts: 2 })
    run()
    actor.send({ type: 'TIMEOUT' })
    expect(state(actor)).toBe('QUEUED')
    expect(context(actor).error?.code).toBe('ERR_TASK_TIMEOUT')
  })

  it('sums the durations of all attempts, not the waits between them', () => {
    const { actor, run, advance } = start({ maxAttempts: 2 })
    run()
    advance(40)
    actor.send({ type: 'FAIL', error: { code: 'ERR_TASK_FAILED', message: 'x' } })
    advance(100)
    actor.send({ type: 'START' })
    advance(60)
    actor.send({ type: 'SUCCEED', output: 'ok' })
    expect(context(actor)).toMatchObject({ busyMs: 100, startedAt: 1000, finishedAt: 1200 })
  })

  it('becomes SKIPPED from PENDING with the given error', () => {
    const { actor } = start()
    actor.send({ type: 'SKIP', error: { code: 'ERR_DEPENDENCY_FAILED', message: 'dep' } })
    expect(state(actor)).toBe('SKIPPED')
    expect(context(actor).error?.code).toBe('ERR_DEPENDENCY_FAILED')
  })

  it('cancels from any non-final state', () => {
    for (const prepare of [() => {}, (a: ReturnType<typeof start>['actor']) => a.send({ type: 'DEPS_DONE' })]) {
      const { actor } = start()
      prepare(actor)
      actor.send({ type: 'CANCEL', error: { code: 'ERR_CANCELLED', message: 'stop' } })
      expect(state(actor)).toBe('CANCELLED')
    }
  })

  it('closes the running attempt when cancelled', () => {
    const { actor, run, advance } = start()
    run()
    advance(25)
    actor.send({ type: 'CANCEL', error: { code: 'ERR_CANCELLED', message: 'stop' } })
    expect(context(actor)).toMatchObject({ busyMs: 25, error: { code: 'ERR_CANCELLED' } })
  })

  it('fails a running attempt on ABORT without retrying', () => {
    const { actor, run } = start({ maxAttempts: 3 })
    run()
    actor.send({ type: 'ABORT', error: { code: 'ERR_BUDGET_EXCEEDED', message: 'over budget' } })
    expect(state(actor)).toBe('FAILED')
  })

  it('restores a journaled output straight to COMPLETED', () => {
    const { actor, states } = start()
    actor.send({ type: 'RESTORE', output: { cached: true }, attempts: 2 })
    expect(states).toEqual(['PENDING', 'COMPLETED'])
    expect(context(actor)).toMatchObject({ output: { cached: true }, reused: true, attempt: 2 })
  })

  it('goes back to QUEUED on RATE_LIMITED without counting the attempt, not before the reset time', () => {
    const { actor, states, run } = start({ maxAttempts: 1 })
    run()
    actor.send({ type: 'RATE_LIMITED', error: { code: 'ERR_TASK_FAILED', message: '429' }, until: 5000, maxRateLimits: 2 })
    expect(states).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'QUEUED'])
    expect(context(actor)).toMatchObject({ attempt: 0, rateLimited: 1, notBefore: 5000 })
    actor.send({ type: 'START' })
    expect(context(actor).attempt).toBe(1)
  })

  it('fails with ERR_RATE_LIMITED once maxRateLimits is used up', () => {
    const { actor, run } = start({ maxAttempts: 3 })
    const limited = { type: 'RATE_LIMITED', error: { code: 'ERR_TASK_FAILED', message: '429 from provider' }, until: 5000, maxRateLimits: 1 } as const
    run()
    actor.send(limited)
    actor.send({ type: 'START' })
    actor.send(limited)
    expect(state(actor)).toBe('FAILED')
    expect(context(actor).error?.code).toBe('ERR_RATE_LIMITED')
    expect(context(actor).error?.message).toContain('429 from provider')
  })
})

describe('task machine: WAITING', () => {
  it('goes RUNNING → WAITING on WAIT and back on RESUME, keeping its attempt', () => {
    const { actor, states, run } = start()
    run()
    actor.send({ type: 'WAIT' })
    actor.send({ type: 'RESUME' })
    actor.send({ type: 'SUCCEED', output: 1 })
    expect(states).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'WAITING', 'RUNNING', 'COMPLETED'])
    expect(context(actor).attempt).toBe(1)
  })

  it('a waiting attempt can time out and retry, or end with its answer', () => {
    const retried = start({ maxAttempts: 2 })
    retried.run()
    retried.actor.send({ type: 'WAIT' })
    retried.actor.send({ type: 'TIMEOUT' })
    expect(state(retried.actor)).toBe('QUEUED')
    const answered = start()
    answered.run()
    answered.actor.send({ type: 'WAIT' })
    answered.actor.send({ type: 'SUCCEED', output: 2 })
    expect(state(answered.actor)).toBe('COMPLETED')
  })

  it('START is ignored while WAITING (it holds its attempt)', () => {
    const { actor, run } = start()
    run()
    actor.send({ type: 'WAIT' })
    actor.send({ type: 'START' })
    expect([state(actor), context(actor).attempt]).toEqual(['WAITING', 1])
  })
})

describe('task machine: AWAITING_APPROVAL', () => {
  it('before start: PENDING → AWAITING_APPROVAL on HOLD, → QUEUED on APPROVE, with no attempt counted', () => {
    const { actor, states } = start()
    actor.send({ type: 'HOLD' })
    actor.send({ type: 'APPROVE' })
    expect(states).toEqual(['PENDING', 'AWAITING_APPROVAL', 'QUEUED'])
    expect(context(actor).attempt).toBe(0)
  })

  it('before merge: RUNNING → AWAITING_APPROVAL on HOLD, → RUNNING on APPROVE, keeping its attempt', () => {
    const { actor, states, run } = start()
    run()
    actor.send({ type: 'HOLD' })
    actor.send({ type: 'APPROVE' })
    actor.send({ type: 'SUCCEED', output: 1 })
    expect(states).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'AWAITING_APPROVAL', 'RUNNING', 'COMPLETED'])
    expect(context(actor).attempt).toBe(1)
  })

  it('REJECT ends it FAILED with the rejection, closing a live attempt', () => {
    const { actor, run, advance } = start()
    run()
    advance(50)
    actor.send({ type: 'HOLD' })
    const error = { code: 'ERR_APPROVAL_REJECTED' as const, message: 'Task "t" was rejected: no' }
    actor.send({ type: 'REJECT', error })
    expect(state(actor)).toBe('FAILED')
    expect(context(actor).error).toEqual(error)
    expect(context(actor).busyMs).toBe(50)
  })

  it('CANCEL ends it CANCELLED', () => {
    const { actor } = start()
    actor.send({ type: 'HOLD' })
    actor.send({ type: 'CANCEL', error: { code: 'ERR_CANCELLED', message: 'stop' } })
    expect(state(actor)).toBe('CANCELLED')
  })

  it('START is ignored while it awaits approval (it holds no slot to start in)', () => {
    const { actor } = start()
    actor.send({ type: 'HOLD' })
    actor.send({ type: 'START' })
    expect([state(actor), context(actor).attempt]).toEqual(['AWAITING_APPROVAL', 0])
  })
})
