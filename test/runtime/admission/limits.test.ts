import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isTroupeError } from '../../../src/runtime/core/errors.ts'
import type { TaskStateEvent } from '../../../src/runtime/report/events.ts'
import { Limits, type LimitPause } from '../../../src/runtime/admission/limits.ts'
import { type CompiledTask, type Plan } from '../../../src/runtime/plan/plan.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { testClock } from '../../helpers/test-clock.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agents = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')
const sleep = join(agents, 'sleep.mjs')
const acquire = join(agents, 'acquire.mjs')

/** A clock whose timers run only when the test advances it. */

const using = (uses: string[]): CompiledTask =>
  compilePlan({ name: 'p', tasks: [{ id: 't', agent: sleep, uses }] }, { baseDir: agents }).tasks[0]!

describe('Limits (a run gate)', () => {
  it('admits as many tasks as maxConcurrent, then refuses until one is released', () => {
    const limits = new Limits({ llm: { maxConcurrent: 2, perSecond: undefined } }, testClock(), () => {})
    const task = using(['llm'])
    expect([limits.tryAcquire('r', task), limits.tryAcquire('r', task), limits.tryAcquire('r', task)]).toEqual([true, true, false])
    limits.release('r', task)
    expect(limits.tryAcquire('r', task)).toBe(true)
  })

  it('admits tasks that use no limit', () => {
    const limits = new Limits({ llm: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    expect(limits.tryAcquire('r', using([]))).toBe(true)
  })

  it('takes nothing when one of several limits refuses', () => {
    const limits = new Limits({ a: { maxConcurrent: 1, perSecond: undefined }, b: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    expect(limits.tryAcquire('r', using(['b']))).toBe(true)
    expect(limits.tryAcquire('r', using(['a', 'b']))).toBe(false)
    expect(limits.tryAcquire('r', using(['a']))).toBe(true)
  })

  it('perSecond allows a burst of one second, then one more per 1/perSecond', () => {
    const clock = testClock()
    const limits = new Limits({ api: { maxConcurrent: undefined, perSecond: 2 } }, clock, () => {})
    const task = using(['api'])
    expect([limits.tryAcquire('r', task), limits.tryAcquire('r', task), limits.tryAcquire('r', task)]).toEqual([true, true, false])
    clock.advanceSync(499)
    expect(limits.tryAcquire('r', task)).toBe(false)
    clock.advanceSync(1)
    expect(limits.tryAcquire('r', task)).toBe(true)
  })

  it('wakes the dispatcher when a task was refused only for want of a token', () => {
    const clock = testClock()
    let wakes = 0
    const limits = new Limits({ api: { maxConcurrent: undefined, perSecond: 1 } }, clock, () => wakes++)
    const task = using(['api'])
    limits.tryAcquire('r', task)
    limits.tryAcquire('r', task)
    clock.advanceSync(1000)
    expect(wakes).toBe(1)
  })

  it('serves agents waiting in acquire before tasks that have not started', async () => {
    const limits = new Limits({ llm: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    const task = using(['llm'])
    limits.tryAcquire('r', task)
    const waiting = limits.acquire('llm', new AbortController().signal)
    limits.release('r', task)
    expect(limits.tryAcquire('r', task)).toBe(false)
    const release = await waiting
    release()
    expect(limits.tryAcquire('r', task)).toBe(true)
  })

  it('a release function gives back its unit once, however often it is called', async () => {
    const limits = new Limits({ llm: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    const release = await limits.acquire('llm', new AbortController().signal)
    release()
    release()
    expect(limits.tryAcquire('r', using(['llm']))).toBe(true)
    expect(limits.tryAcquire('r', using(['llm']))).toBe(false)
  })

  it('drops a waiter whose signal aborts', async () => {
    const limits = new Limits({ llm: { maxConcurrent: 1, perSecond: undefined } }, testClock(), () => {})
    const held = await limits.acquire('llm', new AbortController().signal)
    const controller = new AbortController()
    const waiting = limits.acquire('llm', controller.signal)
    controller.abort(new Error('attempt ended'))
    await expect(waiting).rejects.toThrow('attempt ended')
    held()
    expect(limits.tryAcquire('r', using(['llm']))).toBe(true)
  })

  it('rejects acquire of a limit config.limits does not define', async () => {
    const limits = new Limits({}, testClock(), () => {})
    await expect(limits.acquire('nope', new AbortController().signal)).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' })
  })
})

// ---- on a runtime ----

let runtime: Runtime | undefined

afterEach(async () => {
  await runtime?.close()
  runtime = undefined
})

const overlaps = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1]

function runningIntervals(events: TaskStateEvent[]): [number, number][] {
  const open = new Map<string, number>()
  const out: [number, number][] = []
  for (const e of events) {
    const key = `${e.runId}/${e.taskId}`
    if (e.state === 'RUNNING') open.set(key, e.at)
    else if (e.previous === 'RUNNING') out.push([open.get(key)!, e.at])
  }
  return out
}

describe('Limits.pauseUntil (a provider rate limit)', () => {
  const config = { llm: { maxConcurrent: 3, perSecond: undefined }, cpu: { maxConcurrent: 3, perSecond: undefined } }

  it('admits no task that uses a paused limit until the pause ends', () => {
    const clock = testClock(1000)
    const limits = new Limits(config, clock, () => {})
    limits.pauseUntil(['llm'], 1500, 't1', 'r')
    clock.advanceSync(499)
    expect(limits.tryAcquire('r', using(['llm']))).toBe(false)
    clock.advanceSync(1)
    expect(limits.tryAcquire('r', using(['llm']))).toBe(true)
  })

  it('keeps admitting tasks on other limits', () => {
    const limits = new Limits(config, testClock(1000), () => {})
    limits.pauseUntil(['llm'], 5000, 't1', 'r')
    expect(limits.tryAcquire('r', using(['cpu']))).toBe(true)
  })

  it('holds back ctx.acquire on a paused limit until the pause ends', async () => {
    const clock = testClock(1000)
    const limits = new Limits(config, clock, () => {})
    limits.pauseUntil(['llm'], 2000, 't1', 'r')
    let acquired = false
    void limits.acquire('llm', new AbortController().signal).then(() => (acquired = true))
    await clock.advance(999)
    expect(acquired).toBe(false)
    await clock.advance(1)
    expect(acquired).toBe(true)
  })

  it('wakes the dispatcher when the pause ends, without other activity', () => {
    const clock = testClock(1000)
    let wakes = 0
    const limits = new Limits(config, clock, () => wakes++)
    limits.pauseUntil(['llm'], 1200, 't1', 'r')
    clock.advanceSync(200)
    expect(wakes).toBe(1)
  })

  it('reports the pause once, with limits, until, task, run and time', () => {
    const pauses: LimitPause[] = []
    const limits = new Limits(config, testClock(1000), () => {}, (pause) => pauses.push(pause))
    limits.pauseUntil(['llm', 'cpu', 'llm'], 3000, 't1', 'r')
    expect(pauses).toEqual([{ limits: ['llm', 'cpu'], until: 3000, taskId: 't1', runId: 'r', at: 1000 }])
  })

  it('neither shortens a pause nor reports one that changes nothing (N tasks hitting the same reset)', () => {
    const clock = testClock(1000)
    const pauses: LimitPause[] = []
    const limits = new Limits(config, clock, () => {}, (pause) => pauses.push(pause))
    limits.pauseUntil(['llm'], 3000, 't1', 'r')
    limits.pauseUntil(['llm'], 3000, 't2', 'r')
    limits.pauseUntil(['llm'], 2000, 't3', 'r')
    clock.advanceSync(1500)
    expect([pauses.length, limits.tryAcquire('r', using(['llm']))]).toEqual([1, false])
  })

  it('extends a pause to a later reset, and reports the extension', () => {
    const clock = testClock(1000)
    const pauses: LimitPause[] = []
    const limits = new Limits(config, clock, () => {}, (pause) => pauses.push(pause))
    limits.pauseUntil(['llm'], 2000, 't1', 'r')
    limits.pauseUntil(['llm'], 4000, 't2', 'r')
    clock.advanceSync(2000)
    expect([pauses.map((p) => p.until), limits.tryAcquire('r', using(['llm']))]).toEqual([[2000, 4000], false])
  })

  it('lists the paused limits with their resume time', () => {
    const limits = new Limits(config, testClock(1000), () => {})
    limits.pauseUntil(['cpu'], 2500, 't1', 'r')
    expect(limits.paused()).toEqual([{ name: 'cpu', until: 2500 }])
  })

  it('does not let a refill timer set before the pause admit inside it', () => {
    const clock = testClock(0)
    const limits = new Limits({ api: { maxConcurrent: undefined, perSecond: 1 } }, clock, () => {})
    const task = using(['api'])
    limits.tryAcquire('r', task)
    limits.release('r', task)
    expect(limits.tryAcquire('r', task)).toBe(false) // refill timer set for t=1000
    limits.pauseUntil(['api'], 5000, 't1', 'r')
    clock.advanceSync(1000)
    expect(limits.tryAcquire('r', task)).toBe(false)
    clock.advanceSync(4000)
    expect(limits.tryAcquire('r', task)).toBe(true)
  })
})

describe('named limits on a runtime', () => {
  it('a limit with maxConcurrent 1 serialises the tasks that use it, across two concurrent runs', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 4, pool: { minThreads: 4, maxThreads: 4 }, governor: { enabled: false }, limits: { llm: { maxConcurrent: 1 } } } })
    const plan = (name: string): Plan => ({ name, tasks: ['a', 'b'].map((id) => ({ id, agent: sleep, input: { ms: 100 }, uses: ['llm'] })) })
    const events: TaskStateEvent[] = []
    runtime.on('task:state', (e) => events.push(e))
    const results = await Promise.all([runtime.run(plan('one')).result, runtime.run(plan('two')).result])
    expect(results.map((r) => r.totals.completed)).toEqual([2, 2])
    const spans = runningIntervals(events)
    expect(spans).toHaveLength(4)
    for (const a of spans) for (const b of spans) if (a !== b) expect(overlaps(a, b)).toBe(false)
  })

  it('tasks that do not use the limit still run beside those that do', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 4, pool: { minThreads: 4, maxThreads: 4 }, governor: { enabled: false }, limits: { llm: { maxConcurrent: 1 } } } })
    const events: TaskStateEvent[] = []
    const run = runtime.run({
      name: 'mixed',
      tasks: [
        { id: 'limited', agent: sleep, input: { ms: 200 }, uses: ['llm'] },
        { id: 'free', agent: sleep, input: { ms: 200 } },
      ],
    })
    run.on('task:state', (e) => events.push(e))
    await run.result
    const [a, b] = runningIntervals(events)
    expect(overlaps(a!, b!)).toBe(true)
  })

  it('ctx.acquire serialises the sections agents hold with it', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 3, pool: { minThreads: 3, maxThreads: 3 }, governor: { enabled: false }, limits: { llm: { maxConcurrent: 1 } } } })
    const result = await runtime.run({ name: 'acquire', tasks: ['a', 'b', 'c'].map((id) => ({ id, agent: acquire, input: { limit: 'llm', ms: 80 } })) }).result
    expect(result.totals.completed).toBe(3)
    const spans = Object.values(result.tasks).map((t) => t.output as { start: number; end: number }).map((o): [number, number] => [o.start, o.end])
    for (const a of spans) for (const b of spans) if (a !== b) expect(overlaps(a, b)).toBe(false)
  })

  it('gives back a unit an agent forgot to release when its attempt ends', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 1, governor: { enabled: false }, limits: { llm: { maxConcurrent: 1 } } } })
    const result = await runtime.run({
      name: 'forgetful',
      tasks: [
        { id: 'keeps', agent: acquire, input: { limit: 'llm', ms: 10, keep: true } },
        { id: 'next', agent: acquire, input: { limit: 'llm', ms: 10 }, dependsOn: ['keeps'] },
      ],
    }).result
    expect(result.totals.completed).toBe(2)
  })

  it('fails the task when an agent acquires a limit that is not configured', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 1, governor: { enabled: false } } })
    const result = await runtime.run({ name: 'unknown', tasks: [{ id: 'a', agent: acquire, input: { limit: 'nope' } }] }).result
    expect(result.tasks.a!.error).toMatchObject({ code: 'ERR_TASK_FAILED' })
    expect(result.tasks.a!.error!.message).toContain('nope')
  })

  it('a rate-limited task starts once a token refills, without other activity to wake it', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 2, governor: { enabled: false }, limits: { api: { perSecond: 5 } } } })
    const events: TaskStateEvent[] = []
    const run = runtime.run({ name: 'rate', tasks: ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => ({ id, agent: sleep, input: { ms: 1 }, uses: ['api'] })) })
    run.on('task:state', (e) => events.push(e))
    const result = await run.result
    expect(result.totals.completed).toBe(7)
    const starts = events.filter((e) => e.state === 'RUNNING').map((e) => e.at)
    // A burst of 5, then one token per 200 ms.
    expect(starts[6]! - starts[0]!).toBeGreaterThanOrEqual(300)
  })

  it('rejects a plan whose task uses an undefined limit with ERR_PLAN_INVALID naming task and limit', () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, governor: { enabled: false }, limits: { llm: { maxConcurrent: 1 } } } })
    let error: unknown
    try {
      runtime.run({ name: 'bad', tasks: [{ id: 'writer', agent: sleep, uses: ['gpu'] }] })
    } catch (caught) {
      error = caught
    }
    expect(isTroupeError(error, 'ERR_PLAN_INVALID')).toBe(true)
    expect((error as Error).message).toMatch(/Task "writer" uses limit `"gpu"`.*defined: llm/)
  })
})
