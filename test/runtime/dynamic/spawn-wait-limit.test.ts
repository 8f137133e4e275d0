import { describe, expect, it } from 'vitest'
import { WaitingThreads } from '../../../src/runtime/admission/waiting-threads.ts'
import { systemClock } from '../../../src/runtime/core/clock.ts'
import { ThreadSlots } from '../../../src/runtime/execution/threads/thread-slots.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { FAKE_AGENT, fakeRun } from '../../helpers/fake-executor.ts'

/** A spawn tree of `depth` levels below the root, `fanout` children each, every parent waiting. */
function tree(prefix: string, depth: number, fanout: number): unknown {
  if (depth === 0) return { id: prefix, agent: FAKE_AGENT, input: { ms: 1 } }
  const children = Array.from({ length: fanout }, (_, i) => tree(`${prefix}.${i}`, depth - 1, fanout))
  return { id: prefix, agent: FAKE_AGENT, input: { spawn: { tasks: children, wait: true } } }
}

const rootOf = (depth: number, fanout: number): Plan => ({ name: 'tree', tasks: [tree('n', depth, fanout) as Plan['tasks'][number]] })

describe('ctx.spawn with wait and the thread slots (regression: silent deadlock at 128 waiting parents)', () => {
  it('a 511-task spawn tree fails at once with ERR_SPAWN_WAIT_LIMIT naming the waiting tasks when every slot would hold a waiting parent', async () => {
    // 4 slots, 2 parents may wait off their thread: far fewer than the tree's 255 parents.
    const slots = new WaitingThreads(new ThreadSlots(4, 2))
    const { run } = fakeRun(rootOf(8, 2), { clock: systemClock, maxParallel: 1000, gates: [slots] })
    const result = await run.result
    expect(result.status).toBe('failed')
    expect(result.error?.code).toBe('ERR_SPAWN_WAIT_LIMIT')
    expect(result.error?.message).toMatch(/holding the last of 4 thread slots, the others held by tasks that wait .*\("n\./)
  }, 30_000)

  it('the same tree completes when the slots allow it (every parent may wait off its thread)', async () => {
    const slots = new WaitingThreads(new ThreadSlots(4, 300))
    const { run } = fakeRun(rootOf(8, 2), { clock: systemClock, maxParallel: 1000, gates: [slots] })
    const result = await run.result
    expect(result.status).toBe('completed')
    expect(result.totals.tasks).toBe(511)
  }, 30_000)

  it('a lead waiting on 130 children that each wait on one child completes with spare slots, fails fast without', async () => {
    const plan = (): Plan => ({
      name: 'wide',
      tasks: [
        {
          id: 'lead',
          agent: FAKE_AGENT,
          input: {
            spawn: {
              wait: true,
              tasks: Array.from({ length: 130 }, (_, i) => ({
                id: `c${i}`,
                agent: FAKE_AGENT,
                input: { spawn: { wait: true, tasks: [{ id: `g${i}`, agent: FAKE_AGENT, input: { ms: 1 } }] } },
              })),
            },
          },
        },
      ],
    })
    const ok = await fakeRun(plan(), { clock: systemClock, maxParallel: 1000, gates: [new WaitingThreads(new ThreadSlots(64, 200))] }).run.result
    expect(ok.status).toBe('completed')
    const stuck = await fakeRun(plan(), { clock: systemClock, maxParallel: 1000, gates: [new WaitingThreads(new ThreadSlots(64, 64))] }).run.result
    expect([stuck.status, stuck.error?.code]).toEqual(['failed', 'ERR_SPAWN_WAIT_LIMIT'])
  }, 30_000)
})

describe('WAITING: a parent in ctx.spawn with wait', () => {
  it('goes RUNNING → WAITING while its children run, then RUNNING → COMPLETED, and holds no slot meanwhile', async () => {
    const plan: Plan = {
      name: 'waiting',
      tasks: [{ id: 'lead', agent: FAKE_AGENT, input: { spawn: { wait: true, tasks: [{ id: 'kid', agent: FAKE_AGENT, input: { ms: 5 } }] } } }],
    }
    // maxParallel 1: the child can only start if the waiting parent holds no slot.
    const { run } = fakeRun(plan, { clock: systemClock, maxParallel: 1 })
    const states: string[] = []
    run.on('task:state', (e) => e.taskId === 'lead' && states.push(e.state))
    const result = await run.result
    expect(result.status).toBe('completed')
    expect(states).toEqual(['QUEUED', 'RUNNING', 'WAITING', 'RUNNING', 'COMPLETED'])
  })

  it('a waiting parent cancelled ends CANCELLED once', async () => {
    const plan: Plan = {
      name: 'waiting-cancel',
      tasks: [{ id: 'lead', agent: FAKE_AGENT, input: { spawn: { wait: true, tasks: [{ id: 'kid', agent: FAKE_AGENT, input: { hang: true } }] } } }],
    }
    const { run } = fakeRun(plan, { clock: systemClock, maxParallel: 2 })
    run.on('task:state', (e) => e.taskId === 'lead' && e.state === 'WAITING' && void run.cancel())
    const result = await run.result
    expect([result.status, result.tasks.lead!.state]).toEqual(['cancelled', 'CANCELLED'])
  })
})
