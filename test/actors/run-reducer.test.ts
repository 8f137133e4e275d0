import { describe, expect, it } from 'vitest'
import { initialRunState, phaseOf, reduceRun, repairRefusal, stopReasonOf, type RunEffect, type RunEvent, type RunState } from '../../src/actors/run-reducer.ts'
import type { TaskChange } from '../../src/actors/task-actors.ts'
import type { TaskState } from '../../src/actors/task-machine.ts'
import { fileURLToPath } from 'node:url'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'

// The run's decisions, without a thread, a timer or an actor: events in, effects out.
const plan = compilePlan({
  name: 'reducer',
  agents: { w: './echo.mjs' },
  tasks: [
    { id: 'a', agent: 'w' },
    { id: 'b', agent: 'w', approve: { before: 'start' } },
  ],
}, { baseDir: fileURLToPath(new URL('../fixtures/agents/', import.meta.url)) })
const SUPERVISION = { maxRestarts: 2, periodMs: 1000 }

function fresh(budget: RunState['budget'] = { maxCostUsd: null, onExceeded: 'fail' }): RunState {
  return initialRunState({ plan, supervision: SUPERVISION, rateLimitRetries: 3 }, budget)
}

/** Steps the reducer through `events`, re-dispatching `dispatch` effects as the interpreter does. */
function run(state: RunState, ...events: RunEvent[]): { state: RunState; effects: RunEffect[] } {
  const effects: RunEffect[] = []
  for (const event of events) {
    const [next, out] = reduceRun(state, event)
    state = next
    for (const effect of out) {
      effects.push(effect)
      if (effect.type === 'dispatch') {
        const nested = run(state, effect.event)
        state = nested.state
        effects.push(...nested.effects)
      }
    }
  }
  return { state, effects }
}

const change = (task: number, from: TaskState, to: TaskState, notBefore = 0): TaskChange => ({ task, from, to, attempt: 1, error: undefined, notBefore })
const types = (effects: readonly RunEffect[]) => effects.map((e) => e.type)
const cancel = { kind: 'cancel', error: { code: 'ERR_CANCELLED', message: 'cancelled' } } as const

describe('the run reducer', () => {
  it('is pure: the same state and event give equal results, and the state passed in is not changed', () => {
    const state = fresh()
    const frozen = JSON.stringify(state.lifecycle.value)
    const event: RunEvent = { type: 'changed', change: change(0, 'QUEUED', 'RUNNING'), reused: false }
    expect(reduceRun(state, event)).toEqual(reduceRun(state, event))
    expect(state.running).toBe(0)
    expect(JSON.stringify(state.lifecycle.value)).toBe(frozen)
  })

  it('counts running tasks and keeps the peak', () => {
    const { state } = run(
      fresh(),
      { type: 'changed', change: change(0, 'QUEUED', 'RUNNING'), reused: false },
      { type: 'changed', change: change(1, 'QUEUED', 'RUNNING'), reused: false },
      { type: 'changed', change: change(0, 'RUNNING', 'COMPLETED'), reused: false },
    )
    expect([state.running, state.peakRunning]).toEqual([1, 2])
  })

  it('aborts the attempt of a task that leaves RUNNING other than by its answer', () => {
    const { effects } = run(fresh(), { type: 'transition', change: change(0, 'RUNNING', 'FAILED') })
    expect(effects).toEqual([{ type: 'abort-attempt', task: 0 }])
  })

  it('journals a task that ended and tells the scheduler, except a task reused from an earlier run', () => {
    expect(types(run(fresh(), { type: 'changed', change: change(0, 'RUNNING', 'COMPLETED'), reused: false }).effects)).toEqual([
      'emit-state',
      'task-ended',
      'schedule-end',
    ])
    expect(types(run(fresh(), { type: 'changed', change: change(0, 'PENDING', 'COMPLETED'), reused: true }).effects)).toEqual([
      'emit-state',
      'task-ended',
    ])
  })

  it('arms a retry for an attempt that failed and goes back to QUEUED, and settles only after it fired', () => {
    let { state, effects } = run(fresh(), { type: 'changed', change: change(0, 'RUNNING', 'QUEUED', 500), reused: false })
    expect(effects).toContainEqual({ type: 'arm-retry', task: 0, notBefore: 500 })
    ;({ state, effects } = run(state, { type: 'drained', inFlight: 0, done: true, resumable: false }))
    expect(types(effects)).not.toContain('record')
    ;({ state, effects } = run(state, { type: 'retry-due', task: 0 }))
    expect(effects).toEqual([{ type: 'requeue', task: 0 }, { type: 'request-dispatch' }])
    ;({ state, effects } = run(state, { type: 'drained', inFlight: 0, done: true, resumable: false }))
    expect(types(effects)).toEqual(['record'])
    expect(phaseOf(state)).toBe('recording')
  })

  it('cancels a retry instead of arming it once the run is stopping', () => {
    const stopped = run(fresh(), { type: 'stop', reason: cancel }).state
    const { effects } = run(stopped, { type: 'changed', change: change(0, 'RUNNING', 'QUEUED'), reused: false })
    expect(effects).toContainEqual({ type: 'send', task: 0, event: { type: 'CANCEL', error: cancel.error } })
    expect(types(effects)).not.toContain('arm-retry')
  })

  it('stops once: the first reason wins, and the second stop does nothing', () => {
    const first = run(fresh(), { type: 'stop', reason: cancel })
    expect(types(first.effects)).toEqual(['clear-retries', 'end-scheduling', 'cancel-unended', 'drain'])
    const fail = { kind: 'fail', error: { code: 'ERR_TASK_FAILED', message: 'x' } } as const
    const second = run(first.state, { type: 'stop', reason: fail })
    expect(second.effects).toEqual([])
    expect(stopReasonOf(second.state)).toBe(cancel)
  })

  it('lets running attempts finish when the budget pauses the run, and cancels the rest only once nothing runs', () => {
    const budget = { maxCostUsd: 1, onExceeded: 'pause' } as const
    let { state, effects } = run(fresh(budget), { type: 'spent', taskId: 'a', spentUsd: 1.5 })
    expect(phaseOf(state)).toBe('paused')
    expect(types(effects)).toEqual(['emit-budget-exceeded', 'dispatch', 'drain'])
    ;({ state, effects } = run(state, { type: 'drained', inFlight: 1, done: false, resumable: false }))
    expect(effects).toEqual([])
    ;({ state, effects } = run(state, { type: 'drained', inFlight: 0, done: false, resumable: false }))
    const cancelUnended = effects.find((e) => e.type === 'cancel-unended')
    expect(cancelUnended).toMatchObject({ keepLive: false, error: { code: 'ERR_BUDGET_EXCEEDED', message: expect.stringMatching(/^Not started: /) } })
  })

  it('goes on when the budget of a paused run is raised above its spend, and not when it is still short', () => {
    const paused = run(fresh({ maxCostUsd: 1, onExceeded: 'pause' }), { type: 'spent', taskId: 'a', spentUsd: 1.5 }).state
    expect(phaseOf(run(paused, { type: 'set-budget', maxCostUsd: 1.2, spentUsd: 1.5 }).state)).toBe('paused')
    const raised = run(paused, { type: 'set-budget', maxCostUsd: 5, spentUsd: 1.5 })
    expect(phaseOf(raised.state)).toBe('running')
    expect(stopReasonOf(raised.state)).toBeUndefined()
    expect(raised.state.budget.maxCostUsd).toBe(5)
    expect(types(raised.effects)).toEqual(['request-dispatch', 'drain'])
  })

  it('stops the run with ERR_CRASH_LOOP at the crash past supervision.maxRestarts, after the task is told', () => {
    const crash = (now: number): RunEvent => ({
      type: 'answer',
      task: 0,
      live: true,
      now,
      result: { ok: false, error: { code: 'ERR_WORKER_CRASH', message: 'gone' } },
    })
    const { state, effects } = run(fresh(), crash(10), crash(20), crash(30))
    expect(stopReasonOf(state)?.error.code).toBe('ERR_CRASH_LOOP')
    const last = types(effects).slice(-6)
    expect(last).toEqual(['send', 'dispatch', 'clear-retries', 'end-scheduling', 'cancel-unended', 'drain'])
  })

  it('counts the spend of an answer after its outcome, and the spend of a stale answer alone', () => {
    const usage = { costUsd: 0.5, tokens: 10, apiCalls: 1 }
    const live = run(fresh(), { type: 'answer', task: 0, live: true, now: 0, result: { ok: true, output: 1, usage } })
    expect(types(live.effects)).toEqual(['send', 'count-usage'])
    const stale = run(fresh(), { type: 'answer', task: 0, live: false, now: 0, result: { ok: true, output: 1, usage } })
    expect(types(stale.effects)).toEqual(['count-usage'])
  })

  it('counts each report of an answer that carries one per model, each after the outcome', () => {
    const usage = [
      { costUsd: 0.5, tokens: 10, apiCalls: 0, model: 'pro' },
      { costUsd: 0.1, tokens: 5, apiCalls: 0, model: 'flash' },
    ]
    const { effects } = run(fresh(), { type: 'answer', task: 0, live: true, now: 0, result: { ok: true, output: 1, usage } })
    expect(effects.slice(-3)).toEqual([
      { type: 'send', task: 0, event: { type: 'SUCCEED', output: 1 } },
      { type: 'count-usage', task: 0, report: usage[0] },
      { type: 'count-usage', task: 0, report: usage[1] },
    ])
  })

  it('pauses the limits a rate-limited task uses and re-queues it without counting the attempt', () => {
    const error = { code: 'ERR_RATE_LIMITED', message: '429', rateLimitedUntil: 9_000 } as const
    const { effects } = run(fresh(), { type: 'answer', task: 0, live: true, now: 0, result: { ok: false, error } })
    expect(effects).toEqual([
      { type: 'pause-limits', task: 0, until: 9_000 },
      { type: 'send', task: 0, event: { type: 'RATE_LIMITED', error, until: 9_000, maxRateLimits: 3 } },
    ])
  })

  it('leaves a task approved before start to the ready set: no retry is armed for it', () => {
    const { effects } = run(fresh(), { type: 'changed', change: change(1, 'AWAITING_APPROVAL', 'QUEUED'), reused: false })
    expect(types(effects)).toEqual(['emit-state'])
  })

  it('settles a stopped run once its last attempt answered, and is over once the result is recorded', () => {
    let { state } = run(fresh(), { type: 'stop', reason: cancel })
    let effects: RunEffect[]
    ;({ state, effects } = run(state, { type: 'drained', inFlight: 1, done: true, resumable: false }))
    expect(effects).toEqual([])
    ;({ state, effects } = run(state, { type: 'drained', inFlight: 0, done: true, resumable: true }))
    expect(types(effects)).toEqual(['request-dispatch', 'record'])
    expect(phaseOf(run(state, { type: 'recorded' }).state)).toBe('ended')
  })

  it('stops for its budget when ready tasks are kept back by it and nothing runs or retries that could change that', () => {
    const near = fresh({ maxCostUsd: 1, onExceeded: 'fail' })
    const idle = { type: 'none-started', ready: 2, inFlight: 0, affordable: false, reserved: false, spentUsd: 0.95 } as const
    const { effects } = run(near, idle)
    expect(effects).toMatchObject([{ type: 'dispatch-later', event: { type: 'stop', reason: { kind: 'budget-fail', error: { code: 'ERR_BUDGET_EXCEEDED' } } } }])
    expect(run(near, { ...idle, inFlight: 1 }).effects).toEqual([])
    expect(run(near, { ...idle, affordable: true }).effects).toEqual([])
    const retrying = run(near, { type: 'changed', change: change(0, 'RUNNING', 'QUEUED'), reused: false }).state
    expect(run(retrying, idle).effects).toEqual([])
    expect(run(near, { ...idle, spentUsd: 0.5 }).effects).toEqual([])
    expect(run(near, { ...idle, spentUsd: 0.5, reserved: true }).effects).toMatchObject([{ type: 'dispatch-later' }])
  })

  it('refuses a repair once the run is not running, or when the budget would not admit the task as a new attempt', () => {
    const budget = fresh({ maxCostUsd: 1, onExceeded: 'fail' })
    expect(repairRefusal(budget, 0.5, 'medium')).toBeUndefined()
    expect(repairRefusal(budget, 0.95, 'medium')).toBe('the budget (maxCostUsd 1) is spent')
    expect(repairRefusal(budget, 0.95, 'critical')).toBeUndefined()
    expect(repairRefusal(run(budget, { type: 'stop', reason: cancel }).state, 0, 'critical')).toBe('the run is stopping')
  })
})
