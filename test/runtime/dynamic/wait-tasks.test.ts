import { describe, expect, it } from 'vitest'
import { systemClock } from '../../../src/runtime/core/clock.ts'
import type { WaitTasksAnswer } from '../../../src/runtime/execution/executor.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { FAKE_AGENT, fakeRun } from '../../helpers/fake-executor.ts'

// The run side of the wait_tasks tool (and add_tasks with wait), driven as a CLI agent's tool call would.
type Answer = Extract<WaitTasksAnswer, { ok: true }>
const kid = (id: string, input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({ id, agent: FAKE_AGENT, input, ...extra })
const lead = (input: Record<string, unknown>): Plan => ({ name: 'lead', tasks: [{ id: 'lead', agent: FAKE_AGENT, retries: 0, input }] }) as Plan

describe('wait_tasks: waiting for tasks the caller added', () => {
  it('reports each child COMPLETED with its output; the caller goes WAITING, holding no slot (maxParallel 1)', async () => {
    const { run } = fakeRun(lead({ spawn: { wait: false, tasks: [kid('a'), kid('b')] }, waitTasks: { ids: ['a', 'b'], timeoutMs: 60_000 } }), {
      clock: systemClock,
      maxParallel: 1,
    })
    const states: string[] = []
    run.on('task:state', (e) => e.taskId === 'lead' && states.push(e.state))
    const result = await run.result
    expect(result.status).toBe('completed')
    expect(result.tasks.lead?.output).toEqual({
      ok: true,
      timedOut: false,
      tasks: { a: { state: 'COMPLETED', output: { taskId: 'a' } }, b: { state: 'COMPLETED', output: { taskId: 'b' } } },
    })
    expect(states).toEqual(['QUEUED', 'RUNNING', 'WAITING', 'RUNNING', 'COMPLETED'])
  })

  it('add_tasks with wait adds and waits in one call, naming what it added', async () => {
    const { run } = fakeRun(lead({ waitTasks: { add: [kid('a'), kid('b', {}, { dependsOn: ['a'] })], timeoutMs: 60_000 } }), { clock: systemClock, maxParallel: 1 })
    const result = await run.result
    const answer = result.tasks.lead?.output as Answer
    expect(answer.added).toEqual(['a', 'b'])
    expect(Object.keys(answer.tasks)).toEqual(['a', 'b'])
    expect(answer.tasks.b?.state).toBe('COMPLETED')
  })

  it('a child that failed is reported FAILED with its error code; the wait itself succeeds', async () => {
    const { run } = fakeRun(lead({ waitTasks: { add: [kid('bad', { fail: true }, { retries: 0 }), kid('good')], timeoutMs: 60_000 } }), { clock: systemClock })
    const result = await run.result
    const answer = result.tasks.lead?.output as Answer
    expect(result.tasks.lead?.state).toBe('COMPLETED')
    expect(answer.tasks.bad).toEqual({ state: 'FAILED', error: { code: 'ERR_TASK_FAILED', message: 'bad failed' } })
    expect(answer.tasks.good?.state).toBe('COMPLETED')
  })

  it('may wait for a task its child added (a descendant)', async () => {
    const child = kid('child', { spawn: { wait: false, tasks: [kid('grandchild', { ms: 5 })] } })
    const { run } = fakeRun(lead({ spawn: { wait: true, tasks: [child] }, waitTasks: { ids: ['grandchild'], timeoutMs: 60_000 } }), { clock: systemClock })
    const result = await run.result
    expect((result.tasks.lead!.output as Answer).tasks.grandchild?.state).toBe('COMPLETED')
  })

  it('refuses a task of the plan it did not add: ERR_TASK_NOT_DELEGATED naming it', async () => {
    const plan = { name: 'foreign', tasks: [...lead({ waitTasks: { ids: ['other'], timeoutMs: 60_000 } }).tasks, kid('other')] } as Plan
    const result = await fakeRun(plan, { clock: systemClock }).run.result
    expect(result.tasks.lead?.error?.code).toBe('ERR_TASK_NOT_DELEGATED')
    expect(result.tasks.lead?.error?.message).toContain('task "other" was not added by it')
  })

  it('refuses an id the run does not have: ERR_TASK_NOT_DELEGATED', async () => {
    const result = await fakeRun(lead({ waitTasks: { ids: ['ghost'], timeoutMs: 60_000 } }), { clock: systemClock }).run.result
    expect(result.tasks.lead?.error?.code).toBe('ERR_TASK_NOT_DELEGATED')
    expect(result.tasks.lead?.error?.message).toContain('has no task "ghost"')
  })

  it('refuses a child that depends on the caller (it could only start after the wait): ERR_PLAN_CYCLE', async () => {
    const plan = lead({ spawn: { wait: false, tasks: [kid('after', {}, { dependsOn: ['lead'] })] }, waitTasks: { ids: ['after'], timeoutMs: 60_000 } })
    const result = await fakeRun(plan, { clock: systemClock }).run.result
    expect(result.tasks.lead?.error?.code).toBe('ERR_PLAN_CYCLE')
  })

  it('times out: answers timedOut with the unfinished child RUNNING, and the caller goes on', async () => {
    const { run } = fakeRun(lead({ waitTasks: { add: [kid('slow', { hang: true })], timeoutMs: 20 } }), { clock: systemClock })
    run.on('task:state', (e) => e.taskId === 'lead' && e.state === 'COMPLETED' && void run.cancel('the lead is done'))
    const result = await run.result
    expect(result.tasks.lead?.output).toEqual({ ok: true, added: ['slow'], timedOut: true, tasks: { slow: { state: 'RUNNING' } } })
    expect(result.tasks.slow?.state).toBe('CANCELLED')
  })

  it('cancelling the run while the caller waits ends the caller and its child CANCELLED, once each', async () => {
    const { run } = fakeRun(lead({ waitTasks: { add: [kid('slow', { hang: true })], timeoutMs: 60_000 } }), { clock: systemClock })
    const ends: string[] = []
    run.on('task:state', (e) => {
      if (e.taskId === 'lead' && e.state === 'WAITING') void run.cancel('stop')
      if (e.state === 'CANCELLED') ends.push(e.taskId)
    })
    const result = await run.result
    expect(result.status).toBe('cancelled')
    expect(ends.sort()).toEqual(['lead', 'slow'])
  })

  it('a wait that would make waiting tasks more than maxParallel is refused ERR_SPAWN_WAIT_LIMIT; the run goes on', async () => {
    const nested = kid('mid', { waitTasks: { add: [kid('leaf')], timeoutMs: 60_000 } }, { retries: 0 })
    const stuck = await fakeRun(lead({ waitTasks: { add: [nested], timeoutMs: 60_000 } }), { clock: systemClock, maxParallel: 1 }).run.result
    expect(stuck.tasks.mid?.error?.code).toBe('ERR_SPAWN_WAIT_LIMIT')
    expect(stuck.tasks.mid?.error?.message).toContain('1 tasks of run')
    expect((stuck.tasks.lead!.output as Answer).tasks.mid?.error?.code).toBe('ERR_SPAWN_WAIT_LIMIT')
    const ok = await fakeRun(lead({ waitTasks: { add: [nested], timeoutMs: 60_000 } }), { clock: systemClock, maxParallel: 2 }).run.result
    expect([ok.status, ok.tasks.mid?.state, ok.tasks.leaf?.state]).toEqual(['completed', 'COMPLETED', 'COMPLETED'])
  })

  it('a caller whose attempt timed out while it waited no longer counts as waiting: another task may wait (maxParallel 1)', async () => {
    const plan = {
      name: 'timed-out-waiter',
      tasks: [
        { id: 'lead', agent: FAKE_AGENT, retries: 0, timeoutMs: 20, input: { waitTasks: { add: [kid('k', { ms: 200 })], timeoutMs: 60_000 } } },
        { id: 'other', agent: FAKE_AGENT, retries: 0, input: { ms: 100, waitTasks: { add: [kid('o')], timeoutMs: 60_000 } } },
      ],
    } as Plan
    const result = await fakeRun(plan, { clock: systemClock, maxParallel: 1 }).run.result
    expect(result.tasks.lead?.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect([result.tasks.other?.state, result.tasks.k?.state, result.tasks.o?.state]).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED'])
  })
})
