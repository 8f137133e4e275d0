import { describe, expect, it } from 'vitest'
import { SimulatedClock, createActor, fromPromise } from 'xstate'
import { taskMachine, type ExecuteInput, type TaskState } from '../src/actors/task-machine.ts'

/** A fake `execute` actor whose attempts the test settles by hand. */
function controllable() {
  const attempts: { input: ExecuteInput; resolve: (v: unknown) => void; reject: (e: unknown) => void; signal: AbortSignal }[] = []
  const execute = fromPromise<unknown, ExecuteInput>(
    ({ input, signal }) => new Promise((resolve, reject) => attempts.push({ input, resolve, reject, signal })),
  )
  return { attempts, execute }
}

function start(options: { maxAttempts?: number; timeoutMs?: number; retryDelay?: (attempt: number) => number } = {}) {
  const clock = new SimulatedClock()
  const fake = controllable()
  const actor = createActor(taskMachine.provide({ actors: { execute: fake.execute } }), {
    clock,
    input: {
      taskIndex: 0,
      maxAttempts: options.maxAttempts ?? 1,
      timeoutMs: options.timeoutMs ?? 1000,
      env: { now: () => clock.now(), retryDelay: options.retryDelay ?? ((attempt) => 100 * attempt) },
    },
  })
  const states: TaskState[] = []
  actor.subscribe((s) => {
    if (states.at(-1) !== s.value) states.push(s.value as TaskState)
  })
  actor.start()
  return { actor, clock, attempts: fake.attempts, states }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))
const state = (actor: { getSnapshot(): { value: unknown } }) => actor.getSnapshot().value

describe('task machine', () => {
  it('starts PENDING', () => {
    expect(state(start().actor)).toBe('PENDING')
  })

  it('goes PENDING → QUEUED → RUNNING → COMPLETED with the output', async () => {
    const { actor, attempts, states } = start()
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    attempts[0]!.resolve({ ok: 1 })
    await tick()
    expect(states).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED'])
    expect(actor.getSnapshot().context.output).toEqual({ ok: 1 })
  })

  it('passes the 1-based attempt number to execute', () => {
    const { actor, attempts } = start()
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    expect(attempts[0]!.input).toEqual({ taskIndex: 0, attempt: 1 })
  })

  it('ignores START while PENDING', () => {
    const { actor } = start()
    actor.send({ type: 'START' })
    expect(state(actor)).toBe('PENDING')
  })

  it('fails with the error the attempt rejected with when no retries are left', async () => {
    const { actor, attempts } = start()
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    attempts[0]!.reject({ code: 'ERR_TASK_FAILED', message: 'boom' })
    await tick()
    expect(state(actor)).toBe('FAILED')
    expect(actor.getSnapshot().context.error).toEqual({ code: 'ERR_TASK_FAILED', message: 'boom' })
  })

  it('goes back to QUEUED with attempt + 1 and a backoff delay when retries are left', async () => {
    const { actor, attempts, clock } = start({ maxAttempts: 3 })
    clock.set(5000)
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    attempts[0]!.reject({ code: 'ERR_TASK_FAILED', message: 'flaky' })
    await tick()
    expect(state(actor)).toBe('QUEUED')
    expect(actor.getSnapshot().context.notBefore).toBe(5100)
    actor.send({ type: 'START' })
    expect(actor.getSnapshot().context.attempt).toBe(2)
  })

  it('does not retry an error marked not retryable', async () => {
    const { actor, attempts } = start({ maxAttempts: 3 })
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    attempts[0]!.reject({ code: 'ERR_TASK_FAILED', message: 'fatal', retryable: false })
    await tick()
    expect(state(actor)).toBe('FAILED')
  })

  it('does not retry an agent that cannot be loaded', async () => {
    const { actor, attempts } = start({ maxAttempts: 3 })
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    attempts[0]!.reject({ code: 'ERR_AGENT_LOAD', message: 'missing' })
    await tick()
    expect(actor.getSnapshot().context.error?.code).toBe('ERR_AGENT_LOAD')
  })

  it('times out an attempt on the injected clock and aborts its execution', () => {
    const { actor, attempts, clock } = start({ timeoutMs: 300 })
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    clock.increment(299)
    expect(state(actor)).toBe('RUNNING')
    clock.increment(1)
    expect(state(actor)).toBe('FAILED')
    expect(actor.getSnapshot().context.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(attempts[0]!.signal.aborted).toBe(true)
  })

  it('retries a timed-out attempt when retries are left', () => {
    const { actor, clock } = start({ timeoutMs: 300, maxAttempts: 2 })
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    clock.increment(300)
    expect(state(actor)).toBe('QUEUED')
    expect(actor.getSnapshot().context.error?.code).toBe('ERR_TASK_TIMEOUT')
  })

  it('sums the durations of all attempts', async () => {
    const { actor, attempts, clock } = start({ maxAttempts: 2 })
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    clock.increment(40)
    attempts[0]!.reject({ code: 'ERR_TASK_FAILED', message: 'x' })
    await tick()
    clock.increment(100)
    actor.send({ type: 'START' })
    clock.increment(60)
    attempts[1]!.resolve('ok')
    await tick()
    expect(actor.getSnapshot().context.busyMs).toBe(100)
    expect(actor.getSnapshot().context.attempt).toBe(2)
  })

  it('becomes SKIPPED from PENDING with the given error', () => {
    const { actor } = start()
    actor.send({ type: 'SKIP', error: { code: 'ERR_DEPENDENCY_FAILED', message: 'dep' } })
    expect(state(actor)).toBe('SKIPPED')
    expect(actor.getSnapshot().context.error?.code).toBe('ERR_DEPENDENCY_FAILED')
  })

  it('cancels a running attempt and aborts its signal', () => {
    const { actor, attempts } = start()
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    actor.send({ type: 'CANCEL', error: { code: 'ERR_CANCELLED', message: 'stop' } })
    expect(state(actor)).toBe('CANCELLED')
    expect(attempts[0]!.signal.aborted).toBe(true)
  })

  it('ignores CANCEL once a final state is reached', async () => {
    const { actor, attempts } = start()
    actor.send({ type: 'DEPS_DONE' })
    actor.send({ type: 'START' })
    attempts[0]!.resolve(1)
    await tick()
    actor.send({ type: 'CANCEL', error: { code: 'ERR_CANCELLED', message: 'late' } })
    expect(state(actor)).toBe('COMPLETED')
  })

  it('restores a journaled output straight to COMPLETED', () => {
    const { actor, states } = start()
    actor.send({ type: 'RESTORE', output: { cached: true }, attempts: 2 })
    expect(states).toEqual(['PENDING', 'COMPLETED'])
    expect(actor.getSnapshot().context).toMatchObject({ output: { cached: true }, reused: true, attempt: 2 })
  })
})
