import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { TroupeConfig } from '../../../src/runtime/core/config.ts'
import { TroupeError } from '../../../src/runtime/core/errors.ts'
import type { Gate } from '../../../src/runtime/admission/gate.ts'
import type { AttemptListener, AttemptRequest } from '../../../src/runtime/execution/executor.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import type { Run } from '../../../src/runtime/run.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { createRuntime, runPlan } from '../../../src/runtime/runtime.ts'
import { FAKE_AGENT, fakeBackend } from '../../helpers/fake-executor.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'
import { testClock, type TestClock } from '../../helpers/test-clock.ts'

// createRuntime({ backend }) with a Backend object: the real runtime, run machine and gates over
// a fake executor, so scheduling is tested with no thread and no process.
const config: TroupeConfig = {
  governor: { enabled: false },
  checkpoint: { enabled: false },
  retry: { delayMs: 10, maxDelayMs: 10, jitter: false },
}

/** Moves the clock on in 10 ms steps until `run` ends (at most `limitMs`). */
async function settle(run: Run, clock: TestClock, limitMs = 10_000): Promise<RunResult> {
  let result: RunResult | undefined
  void run.result.then((r) => (result = r))
  for (let waited = 0; result === undefined && waited <= limitMs; waited += 10) await clock.advance(10)
  if (result === undefined) throw new Error(`run ${run.id} did not end within ${limitMs} ms of the test clock`)
  return result
}

describe('createRuntime({ backend }) with a Backend object', () => {
  let dir: string
  let plan: Plan
  beforeEach(() => {
    // An agent module that leaves a file when loaded, and a command that leaves one when run:
    // a thread that checked or ran the module, or a process started, would leave its mark.
    dir = mkdtempSync(join(tmpdir(), 'troupe-backend-'))
    const agent = [
      "import { writeFileSync } from 'node:fs'",
      "writeFileSync(new URL('./loaded', import.meta.url), '')",
      "export default async () => 'ran'",
    ]
    writeFileSync(join(dir, 'agent.mjs'), `${agent.join('\n')}\n`)
    plan = {
      name: 'marks',
      agents: { touch: { kind: 'command', run: ['touch', join(dir, 'spawned')] } },
      tasks: [
        { id: 'a', agent: join(dir, 'agent.mjs') },
        { id: 'b', agent: 'touch', dependsOn: ['a'] },
        { id: 'c', agent: join(dir, 'agent.mjs'), dependsOn: ['a', 'b'] },
      ],
    } as Plan
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('runs the plan in dependency order on the fake: no agent module loaded, no process started', async () => {
    const clock = testClock()
    const backend = fakeBackend(clock)
    const runtime = createRuntime({ backend, clock, config })
    const run = runtime.run(plan)
    const started: string[] = []
    run.on('task:state', (e) => e.state === 'RUNNING' && started.push(e.taskId))
    const result = await settle(run, clock)
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(started).toEqual(['a', 'b', 'c'])
    expect(backend.executor.started).toBe(3)
    expect(existsSync(join(dir, 'loaded'))).toBe(false)
    expect(existsSync(join(dir, 'spawned'))).toBe(false)
  })

  it("control: the same plan on the 'local' backend loads the module in a thread and runs the command", async () => {
    const result = await runPlan(plan, { config })
    expect(result.status).toBe('completed')
    expect(existsSync(join(dir, 'loaded'))).toBe(true)
    expect(existsSync(join(dir, 'spawned'))).toBe(true)
  })
})

describe('scheduling on a fake backend', () => {
  const task = (id: string, input: Record<string, unknown>, extra: object = {}) => ({ id, agent: FAKE_AGENT, input, ...extra })

  it('retries a failing task after the retry delay on the injected clock, then fails it', async () => {
    const clock = testClock()
    const backend = fakeBackend(clock)
    const runtime = createRuntime({ backend, clock, config })
    const run = runtime.run({ name: 'retries', tasks: [task('flaky', { fail: true }, { retries: 2 })] } as Plan)
    const result = await settle(run, clock)
    await runtime.close()
    expect(result.tasks.flaky?.state).toBe('FAILED')
    expect(result.tasks.flaky?.attempts).toBe(3)
    expect(backend.executor.started).toBe(3)
  })

  it('times an attempt out on the injected clock: RUNNING at 999 ms, ERR_TASK_TIMEOUT at 1000 ms', async () => {
    const clock = testClock()
    const backend = fakeBackend(clock)
    const runtime = createRuntime({ backend, clock, config })
    const run = runtime.run({ name: 'timeout', tasks: [task('stuck', { hang: true }, { timeoutMs: 1_000, retries: 0 })] } as Plan)
    const states: string[] = []
    const running = new Promise<void>((resolve) => run.on('task:state', (e) => e.state === 'RUNNING' && resolve()))
    run.on('task:state', (e) => states.push(e.state))
    await running
    const startedAt = clock.now()
    await clock.advance(999)
    expect(states.at(-1)).toBe('RUNNING')
    const result = await settle(run, clock)
    await runtime.close()
    expect(result.tasks.stuck?.state).toBe('FAILED')
    expect(result.tasks.stuck?.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(clock.now() - startedAt).toBeLessThan(1_010)
    expect(backend.executor.inFlight).toBe(0)
  })

  it('cancels a run: the attempt in flight is aborted, the task CANCELLED, the one after it never started', async () => {
    const clock = testClock()
    const backend = fakeBackend(clock)
    const runtime = createRuntime({ backend, clock, config })
    const run = runtime.run({ name: 'cancel', tasks: [task('long', { hang: true }), task('next', {}, { dependsOn: ['long'] })] } as Plan)
    await new Promise<void>((resolve) => run.on('task:state', (e) => e.state === 'RUNNING' && resolve()))
    const result = await run.cancel('test')
    await runtime.close()
    expect(result.status).toBe('cancelled')
    expect(result.tasks.long?.state).toBe('CANCELLED')
    expect(result.tasks.next?.state).toBe('CANCELLED')
    expect(backend.executor.started).toBe(1)
    expect(backend.executor.inFlight).toBe(0)
  })

  it("puts the backend's gates in the admission chain: every task acquires them and releases them once", async () => {
    const clock = testClock()
    const acquired: string[] = []
    const released: string[] = []
    const gate: Gate = { tryAcquire: (_run, t) => (acquired.push(t.id), true), release: (_run, t) => void released.push(t.id) }
    const runtime = createRuntime({ backend: fakeBackend(clock, [gate]), clock, config })
    const run = runtime.run({ name: 'gated', tasks: [task('a', {}), task('b', {}, { dependsOn: ['a'] })] } as Plan)
    const result = await settle(run, clock)
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(acquired).toEqual(['a', 'b'])
    expect(released).toEqual(['a', 'b'])
  })

  it("prepares the backend with the run's plan and parallelism (1 under sequential) before the first task", async () => {
    const clock = testClock()
    const backend = fakeBackend(clock)
    const runtime = createRuntime({ backend, clock, config })
    await settle(runtime.run({ name: 'wide', tasks: [task('a', {})] } as Plan, { maxParallel: 3 }), clock)
    await settle(runtime.run({ name: 'one-by-one', tasks: [task('a', {})] } as Plan, { strategy: 'sequential' }), clock)
    await runtime.close()
    expect(backend.prepared).toEqual([
      { plan: 'wide', parallelism: 3 },
      { plan: 'one-by-one', parallelism: 1 },
    ])
  })

  it('fails the run with the code a rejecting prepare gives, and ERR_AGENT_LOAD for one that throws a plain error', async () => {
    const clock = testClock()
    const refusing = { ...fakeBackend(clock), prepare: () => Promise.reject(new TroupeError('ERR_AGENT_UNAVAILABLE', 'no agents here')) }
    const throwing = {
      ...fakeBackend(clock),
      prepare: () => {
        throw new Error('broken backend')
      },
    }
    const results: RunResult[] = []
    for (const backend of [refusing, throwing]) {
      const runtime = createRuntime({ backend, clock, config })
      results.push(await settle(runtime.run({ name: 'refused', tasks: [task('a', {})] } as Plan), clock))
      await runtime.close()
      expect(backend.executor.started).toBe(0)
    }
    expect(results.map((r) => [r.status, r.error?.code])).toEqual([
      ['failed', 'ERR_AGENT_UNAVAILABLE'],
      ['failed', 'ERR_AGENT_LOAD'],
    ])
  })

  it("close() closes the backend once: forced at once with force, else after the runs", async () => {
    const clock = testClock()
    const forced = fakeBackend(clock)
    const runtime = createRuntime({ backend: forced, clock, config })
    const run = runtime.run({ name: 'hang', tasks: [task('h', { hang: true })] } as Plan)
    await new Promise<void>((resolve) => run.on('task:state', (e) => e.state === 'RUNNING' && resolve()))
    await runtime.close({ force: true })
    expect(forced.closed).toEqual([true])
    expect((await run.result).tasks.h?.state).toBe('CANCELLED')
    const gentle = fakeBackend(clock)
    await createRuntime({ backend: gentle, clock, config }).close()
    expect(gentle.closed).toEqual([false])
  })

  it("hands an executor the run's scratchpad and mailbox through the attempt's listener", async () => {
    const clock = testClock()
    const inner = fakeBackend(clock)
    const executor = {
      ...inner.executor,
      name: 'notes',
      start(request: AttemptRequest, listener: AttemptListener) {
        const work = async () => {
          await listener.scratchpad?.()?.append(request.taskId, `hello from ${request.taskId}`)
          if (request.taskId === 'a') await listener.mailbox?.()?.send('a', 'b', 'psst')
          const inbox = (await listener.mailbox?.()?.inbox(request.taskId))?.messages.map((m) => `${m.from}: ${m.text}`)
          return { ok: true as const, output: { notes: (await listener.scratchpad?.()?.read())?.map((note) => note.text), inbox } }
        }
        return { result: work(), abort: () => {} }
      },
      close: async () => {},
    }
    const runtime = createRuntime({ backend: { ...inner, executor }, clock, config })
    const run = runtime.run({ name: 'notes', tasks: [task('a', {}), task('b', {})] } as Plan, { maxParallel: 1 })
    const notes: string[] = []
    run.on('scratchpad:note', (e) => notes.push(`${e.taskId}: ${e.text}`))
    const result = await settle(run, clock)
    await runtime.close()
    expect(notes).toEqual(['a: hello from a', 'b: hello from b'])
    expect(result.tasks.b?.output).toEqual({ notes: ['hello from a', 'hello from b'], inbox: ['a: psst'] })
  })

  it("runtime.ready() is the backend's ready(): its rejection comes through", async () => {
    const clock = testClock()
    const unavailable = new TroupeError('ERR_BACKEND_UNAVAILABLE', 'down')
    const runtime = createRuntime({ backend: { ...fakeBackend(clock), ready: () => Promise.reject(unavailable) }, clock, config })
    await expect(runtime.ready()).rejects.toBe(unavailable)
    await runtime.close()
  })
})

describe('createRuntime({ backend }): values that are neither a backend string nor a Backend', () => {
  it.each([
    ['a number', 42, '`options.backend` is `42` (number): expected "local", redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB] or a Backend'],
    ['an executor without start()', { executor: {} }, '(executor.start is not a function)'],
    ['no gates', { executor: { start() {}, close() {} }, close() {} }, '(gates is not an array)'],
    ['a bare gate', { executor: { start() {}, close() {} }, gates: [{}], close() {} }, '(gates[0] is not a gate'],
    ['no close()', { executor: { start() {}, close() {} }, gates: [] }, '(close is not a function)'],
  ])('refuses %s with ERR_ARGUMENT_INVALID naming backend and what is allowed', (_what, backend, message) => {
    const error = troupeErrorOf(() => createRuntime({ backend: backend as never }))
    expect(error.code).toBe('ERR_ARGUMENT_INVALID')
    expect(error.message).toContain('Invalid createRuntime() options: `options.backend` is')
    expect(error.message).toContain('or a Backend: an object with executor (start(), close()), gates (an array of gates) and close()')
    expect(error.message).toContain(message)
  })

  it('keeps the message for a string that is no backend URL', () => {
    const error = troupeErrorOf(() => createRuntime({ backend: 'http://x' }))
    expect(error.code).toBe('ERR_ARGUMENT_INVALID')
    expect(error.message).toBe(
      'Invalid createRuntime() options: `options.backend` is `"http://x"` (string): expected a string matching the RegExp ' +
        '^(local|rediss?:\\/\\/([^\\s/@]+@)?[^/\\s:@]+(:\\d{1,5})?(\\/\\d{1,2})?)$',
    )
  })

  it('refuses a non-Backend through runPlan as well, naming runPlan', async () => {
    const plan = { name: 'x', tasks: [] } as unknown as Plan
    const error = await runPlan(plan, { backend: { executor: null } as never }).catch((e: unknown) => e)
    expect((error as TroupeError).code).toBe('ERR_ARGUMENT_INVALID')
    expect((error as TroupeError).message).toContain('Invalid runPlan() options: `options.backend` is')
  })
})
