import { type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { isTroupeError } from '../../../../src/runtime/core/errors.ts'
import type { AttemptListener, AttemptRequest, Executor } from '../../../../src/runtime/execution/executor.ts'
import { AttemptCalls } from '../../../../src/runtime/execution/redis/attempt-calls.ts'
import { parseRedisUrl, redisOptions } from '../../../../src/runtime/execution/redis/connection.ts'
import { signService } from '../../../../src/runtime/execution/redis/job-signature.ts'
import {
  answersChannel,
  eventsChannel,
  jobIdOf,
  type ServiceCall,
  type ServiceReply,
} from '../../../../src/runtime/execution/redis/protocol.ts'
import { startRemoteWorker, type RemoteWorker } from '../../../../src/runtime/execution/redis/redis-worker.ts'
import type { TaskMessageEvent } from '../../../../src/runtime/report/events.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { startRedis, type TestRedis } from '../../../helpers/redis-server.ts'
import { startTroupeWorker } from '../../../helpers/troupe-worker.ts'

// The coordinator (this process) signs jobs with it; the worker processes inherit it and sign their calls with it.
const SECRET = 'test-secret-0123456789abcdef'
process.env.TROUPE_SECRET = SECRET
const root = join(import.meta.dirname, '..', '..', '..', '..')
const agent = (name: string) => join(root, 'test', 'fixtures', 'agents', name)
const quiet = { governor: { enabled: false }, checkpoint: { enabled: false } } as const

const children: ChildProcess[] = []

/** Starts a real `troupe worker` process on `redis` and waits until it takes jobs. */
function startWorker(redis: TestRedis, name: string): Promise<ChildProcess> {
  return startTroupeWorker(redis.url, children, { name })
}

const waitFor = async (done: () => boolean) => {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 20))
}

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

describe('ctx services of module agents on remote workers (worker processes)', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
    await Promise.all([startWorker(redis, 'w1'), startWorker(redis, 'w2')])
  }, 60_000)

  afterAll(async () => {
    await redis?.stop()
  })

  it('a note a remote attempt appends to the scratchpad is read by the dependent task, as its own task', async () => {
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 2 }, backend: redis.url })
    const result = await runtime.run({
      name: 'remote-pad',
      tasks: [
        { id: 'writer', agent: agent('scratchpad-note.mjs'), input: { append: 'written on a worker' } },
        { id: 'reader', agent: agent('scratchpad-note.mjs'), dependsOn: ['writer'], input: {} },
      ],
    }).result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(result.tasks.writer!.worker).toMatch(/^w[12]$/)
    const notes = (result.tasks.reader!.output as { notes: { taskId: string; text: string }[] }).notes
    expect(notes.map((note) => ({ taskId: note.taskId, text: note.text }))).toEqual([{ taskId: 'writer', text: 'written on a worker' }])
  }, 60_000)

  it('ctx.acquire on a limit of maxConcurrent 1 from two remote attempts: the second holds it once the first gave it back', async () => {
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 2, limits: { one: { maxConcurrent: 1 } } }, backend: redis.url })
    const result = await runtime.run({
      name: 'remote-acquire',
      tasks: ['a', 'b'].map((id) => ({ id, agent: agent('acquire.mjs'), input: { limit: 'one', ms: 150 } })),
    }).result
    await runtime.close()
    expect(result.status).toBe('completed')
    // Both ran at once, one on each worker: only the limit kept their held spans apart.
    expect(new Set([result.tasks.a!.worker, result.tasks.b!.worker])).toEqual(new Set(['w1', 'w2']))
    const [first, second] = ['a', 'b']
      .map((id) => result.tasks[id]!.output as { start: number; end: number })
      .sort((x, y) => x.start - y.start)
    expect(second!.start).toBeGreaterThanOrEqual(first!.end)
  }, 60_000)

  it('ctx.acquire of a limit the config does not define fails the remote attempt with the message a local attempt gets', async () => {
    const runtime = createRuntime({ config: { ...quiet, limits: { one: { maxConcurrent: 1 } } }, backend: redis.url })
    const result = await runtime.run({
      name: 'remote-unknown-limit',
      tasks: [{ id: 'a', agent: agent('acquire.mjs'), retries: 0, input: { limit: 'nope' } }],
    }).result
    await runtime.close()
    expect(result.tasks.a!.state).toBe('FAILED')
    expect(result.tasks.a!.error?.message).toContain('ctx.acquire: no limit named `"nope"` (string) in config.limits (defined: one)')
  }, 60_000)

  it('ctx.claim from remote attempts: a path one attempt holds is refused to the other, with the holder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-remote-claim-'))
    const holding = join(dir, 'holding')
    const asked = join(dir, 'asked')
    const runtime = createRuntime({ config: { ...quiet, maxParallel: 2 }, backend: redis.url })
    const result = await runtime.run({
      name: 'remote-claim',
      tasks: [
        {
          id: 'holder',
          agent: agent('claim.mjs'),
          input: {
            steps: [
              ['claim', 'src/a.ts'],
              ['signal', holding],
              ['wait', asked],
            ],
          },
        },
        {
          id: 'asker',
          agent: agent('claim.mjs'),
          input: {
            steps: [
              ['wait', holding],
              ['claim', 'src/a.ts'],
              ['signal', asked],
            ],
          },
        },
      ],
    }).result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect((result.tasks.holder!.output as { answers: unknown[] }).answers).toEqual([{ granted: true }])
    expect((result.tasks.asker!.output as { answers: unknown[] }).answers).toEqual([
      expect.objectContaining({ granted: false, holder: 'holder' }),
    ])
  }, 60_000)

  it('refuses a forged service call (bad signature or none) of a running remote attempt with ERR_JOB_REFUSED: it does nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-remote-forged-'))
    const until = join(dir, 'until')
    const runtime = createRuntime({ config: quiet, backend: redis.url })
    const connection = redisOptions(parseRedisUrl(redis.url))
    const listen = new Redis(connection)
    const publisher = new Redis(connection)
    const replies: ServiceReply[] = []
    let started = false
    listen.on('message', (channel, message) => {
      if (channel.includes(':answers:')) replies.push(JSON.parse(message) as ServiceReply)
      else if ((JSON.parse(message) as { type: string }).type === 'started') started = true
    })
    const run = runtime.run({ name: 'remote-forged', tasks: [{ id: 'victim', agent: agent('wait-file.mjs'), input: { until } }] })
    const jobId = jobIdOf({ runId: run.id, taskId: 'victim', attempt: 1 })
    await listen.subscribe(answersChannel(jobId), eventsChannel(jobId))
    // A worker runs the attempt (the coordinator listens by then: it subscribes before it enqueues).
    await waitFor(() => started)
    const request = { op: 'scratchpad.append', text: 'forged note' } as const
    const forged: ServiceCall[] = [
      // Signed with another secret.
      {
        type: 'service',
        call: 1_000_001,
        session: 'forger',
        request,
        signature: signService('another-secret-0123456789', jobId, { call: 1_000_001, session: 'forger', request }),
      },
      { type: 'service', call: 1_000_002, session: 'forger', request },
    ]
    for (const call of forged) await publisher.publish(eventsChannel(jobId), JSON.stringify(call))
    await waitFor(() => replies.length >= 2)
    writeFileSync(until, '')
    const result = await run.result
    await runtime.close()
    listen.disconnect()
    publisher.disconnect()
    // The first two: the attempt's own calls (its read at the end) are answered after them.
    expect(replies.slice(0, 2)).toEqual(
      forged.map((call) => ({ call: call.call, error: { code: 'ERR_JOB_REFUSED', message: expect.stringContaining('not signed') } })),
    )
    expect(result.status).toBe('completed')
    expect((result.tasks.victim!.output as { notes: unknown[] }).notes).toEqual([])
  }, 60_000)
})

/**
 * A runtime with one unit of limit `one`, and a run named `name` whose task `holder` holds it
 * on worker `doomed` until the file `until` exists (it writes its pid to `held` once it has it).
 */
async function holdOnDoomed(redis: TestRedis, name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-remote-hold-'))
  const held = join(dir, 'held')
  const until = join(dir, 'until')
  const doomed = await startWorker(redis, 'doomed')
  const runtime = createRuntime({ config: { ...quiet, limits: { one: { maxConcurrent: 1 } } }, backend: redis.url })
  const run = runtime.run({ name, tasks: [{ id: 'holder', agent: agent('hold-limit.mjs'), input: { limit: 'one', held, until } }] })
  await waitFor(() => existsSync(held))
  return { held, until, doomed, runtime, run }
}

describe('a worker killed with SIGKILL while its attempt holds a named limit', () => {
  const setup = withRedis()

  it('does not keep the unit: the attempt runs again on another worker, acquires the limit again and the run completes', async () => {
    const { held, until, doomed, runtime, run } = await holdOnDoomed(setup.redis, 'remote-kill')
    const doomedPid = Number(readFileSync(held, 'utf8'))
    doomed.kill('SIGKILL')
    await new Promise((resolve) => doomed.once('exit', resolve))
    // The only unit of `one` was held by the killed attempt: the new run of it gets it only if the coordinator gave it back.
    writeFileSync(until, '')
    await startWorker(setup.redis, 'rescuer')
    const result = await run.result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(result.tasks.holder!.worker).toBe('rescuer')
    expect((result.tasks.holder!.output as { pid: number }).pid).not.toBe(doomedPid)
  }, 90_000)
})

describe('a worker killed with SIGKILL while its attempt holds a named limit, no worker free to run it again', () => {
  const setup = withRedis()

  it('gives the unit back once the worker is gone: an attempt of another run waiting for it on the other worker gets it', async () => {
    // Limits are the runtime's: both runs share the one unit of `one`.
    const { until, doomed, runtime, run: first } = await holdOnDoomed(setup.redis, 'remote-lost-holder')
    // `steady` takes the waiter (the doomed worker's one slot is busy), which waits for the unit the holder keeps.
    await startWorker(setup.redis, 'steady')
    const second = runtime.run({
      name: 'remote-lost-waiter',
      tasks: [{ id: 'waiter', agent: agent('acquire.mjs'), input: { limit: 'one', ms: 10 } }],
    })
    doomed.kill('SIGKILL')
    await new Promise((resolve) => doomed.once('exit', resolve))
    // Only now may the holder end: written before the kill, the doomed attempt could see it and finish there.
    writeFileSync(until, '')
    // The holder's job cannot run again before the waiter ends (steady's only slot): only the sweep frees the unit.
    const waited = await second.result
    const held2 = await first.result
    await runtime.close()
    expect(waited.tasks.waiter).toMatchObject({ state: 'COMPLETED', worker: 'steady' })
    expect(held2.tasks.holder).toMatchObject({ state: 'COMPLETED', worker: 'steady' })
  }, 90_000)
})

describe('messages between tasks from a remote worker (in-process worker, an executor using the listener)', () => {

  /** Sends `input.send` to `input.to`, then returns its inbox: what a CLI agent's send_message / read_messages tools do. */
  const mailer: Executor = {
    name: 'mailer',
    start(request: AttemptRequest, listener: AttemptListener) {
      const work = async () => {
        const input = request.input as { to?: string; send?: string }
        const mailbox = listener.mailbox?.()
        if (mailbox === undefined) throw new Error('no mailbox')
        if (input.to !== undefined) await mailbox.send(request.taskId, input.to, input.send ?? '')
        return { ok: true as const, output: await mailbox.inbox(request.taskId) }
      }
      return {
        result: work().catch((error: { code?: 'ERR_TASK_FAILED'; message: string }) => ({
          ok: false as const,
          error: { code: error.code ?? 'ERR_TASK_FAILED', message: error.message, retryable: false },
        })),
        abort: () => undefined,
      }
    },
    close: async () => undefined,
  }

  const setup = withInProcessWorker('mailer', 2, mailer)

  it('a message sent from a remote attempt is in the inbox of the task it names, from the sender', async () => {
    const runtime = createRuntime({ config: quiet, backend: setup.redis.url })
    const run = runtime.run({
      name: 'remote-mail',
      tasks: [
        { id: 'sender', agent: agent('echo.mjs'), input: { to: 'reader', send: 'hello from a worker' } },
        { id: 'reader', agent: agent('echo.mjs'), dependsOn: ['sender'], input: {} },
      ],
    })
    const events: TaskMessageEvent[] = []
    run.on('task:message', (e) => events.push(e))
    const result = await run.result
    await runtime.close()
    expect(result.status).toBe('completed')
    // The run's `task:message` event, on the coordinator, for a message sent on the worker.
    expect(events).toMatchObject([{ runId: result.runId, seq: 0, from: 'sender', to: 'reader', text: 'hello from a worker' }])
    const inbox = result.tasks.reader!.output as { messages: { from: string; to: string; text: string }[]; total: number }
    expect(inbox.total).toBe(1)
    expect(inbox.messages[0]).toMatchObject({ from: 'sender', to: 'reader', text: 'hello from a worker' })
  }, 60_000)

  it('a message to a task the run does not have fails as it does locally, with ERR_ARGUMENT_INVALID', async () => {
    const runtime = createRuntime({ config: quiet, backend: setup.redis.url })
    const result = await runtime.run({
      name: 'remote-mail-bad',
      tasks: [{ id: 'sender', agent: agent('echo.mjs'), retries: 0, input: { to: 'ghost', send: 'hi' } }],
    }).result
    await runtime.close()
    expect(result.tasks.sender!.error).toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
      message: expect.stringContaining('`to` must be the id of a task of this run'),
    })
  }, 60_000)
})

describe('wait_tasks from a remote worker of one slot (in-process worker, an executor using the listener)', () => {

  /** With `input.children`: adds them and waits for them (what `add_tasks` with `wait` does); else returns its task id. */
  const delegator: Executor = {
    name: 'delegator',
    start(request: AttemptRequest, listener: AttemptListener) {
      const input = request.input as { children?: unknown[] }
      const work = async () => {
        if (input.children === undefined) return { ok: true as const, output: { child: request.taskId } }
        return { ok: true as const, output: await listener.onWaitTasks!({ add: input.children, timeoutMs: 60_000 }) }
      }
      return { result: work(), abort: () => undefined }
    },
    close: async () => undefined,
  }

  const setup = withInProcessWorker('solo', 1, delegator)

  it('adds the tasks, runs them on the same worker while the parent waits, and answers their outputs', async () => {
    const runtime = createRuntime({ config: quiet, backend: setup.redis.url })
    const children = ['kid-a', 'kid-b'].map((id) => ({ id, agent: agent('echo.mjs'), input: {} }))
    const result = await runtime.run({ name: 'remote-wait', tasks: [{ id: 'lead', agent: agent('echo.mjs'), input: { children } }] }).result
    await runtime.close()
    expect(result.status).toBe('completed')
    const answer = result.tasks.lead!.output as { ok: boolean; added: string[]; timedOut: boolean; tasks: Record<string, unknown> }
    expect(answer).toMatchObject({ ok: true, added: ['kid-a', 'kid-b'], timedOut: false })
    expect(answer.tasks['kid-a']).toEqual({ state: 'COMPLETED', output: { child: 'kid-a' } })
    expect(result.tasks['kid-b']).toMatchObject({ state: 'COMPLETED', worker: 'solo', parent: 'lead' })
  }, 60_000)
})

describe('AttemptCalls (a worker waiting for the coordinator)', () => {
  it('fails a service call the coordinator does not take up with ERR_BACKEND_UNAVAILABLE', async () => {
    const error = await new AttemptCalls(50).service('run.a.1', 'ctx.scratchpad.append', () => undefined).catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_BACKEND_UNAVAILABLE')).toBe(true)
    expect((error as Error).message).toContain('ctx.scratchpad.append: the coordinator did not answer')
  })

  it('an accepted call the coordinator keeps confirming waits past the timeout for its answer', async () => {
    vi.useFakeTimers()
    try {
      const calls = new AttemptCalls(1_000)
      let sent = 0
      const answer = calls.service('run.a.1', 'ctx.acquire("one")', (call) => (sent = call))
      for (let i = 0; i < 5; i++) {
        calls.answered(answersChannel('run.a.1'), JSON.stringify({ call: sent, accepted: true }))
        vi.advanceTimersByTime(900)
      }
      calls.answered(answersChannel('run.a.1'), JSON.stringify({ call: sent, value: 7 }))
      await expect(answer).resolves.toBe(7)
    } finally {
      vi.useRealTimers()
    }
  })

  it('fails an accepted call with ERR_BACKEND_UNAVAILABLE once the coordinator stops confirming it', async () => {
    vi.useFakeTimers()
    try {
      const calls = new AttemptCalls(1_000)
      let sent = 0
      const answer = calls.service('run.a.1', 'ctx.acquire("one")', (call) => (sent = call)).catch((e: unknown) => e)
      calls.answered(answersChannel('run.a.1'), JSON.stringify({ call: sent, accepted: true }))
      vi.advanceTimersByTime(1_000)
      expect(isTroupeError(await answer, 'ERR_BACKEND_UNAVAILABLE')).toBe(true)
    } finally {
      vi.useRealTimers()
    }
  })

  it('refuses the calls still waiting when the attempt ends, with ERR_CANCELLED', async () => {
    const calls = new AttemptCalls()
    const answer = calls.service('run.a.1', 'ctx.claim("x")', () => undefined).catch((e: unknown) => e)
    calls.forget('run.a.1')
    expect(isTroupeError(await answer, 'ERR_CANCELLED')).toBe(true)
  })
})

/** A Redis server and an in-process worker running `executor`, for the describe block that calls it. */
function withInProcessWorker(name: string, concurrency: number, executor: Executor): { readonly redis: TestRedis } {
  const setup = withRedis()
  let worker: RemoteWorker | undefined
  beforeAll(async () => {
    worker = await startRemoteWorker({ target: parseRedisUrl(setup.redis.url), name, concurrency, cwd: root, executor, secret: SECRET })
  }, 60_000)
  afterAll(async () => {
    await worker?.close(true)
  })
  return setup
}

/** A Redis server for the describe block that calls it (its hooks are registered there). */
function withRedis(): { readonly redis: TestRedis } {
  const setup = {} as { redis: TestRedis }
  beforeAll(async () => {
    setup.redis = await startRedis()
  }, 60_000)
  afterAll(async () => {
    await setup.redis?.stop()
  })
  return setup
}
