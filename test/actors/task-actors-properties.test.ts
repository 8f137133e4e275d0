import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createActor, setup } from 'xstate'
import { TaskActors, type TaskChange } from '../../src/actors/task-actors.ts'
import { taskResult } from '../../src/actors/run-result.ts'
import { TERMINAL_STATES, taskMachine, type AttemptError, type TaskEvent, type TaskState } from '../../src/actors/task-machine.ts'
import { resolveConfig } from '../../src/runtime/core/config.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'

// TaskActors steps a task without an actor while it is only queued, and through its first
// attempt while that attempt only runs and succeeds. Whatever the events, it must report
// exactly the changes, contexts and result records a task actor would.
const plan = compilePlan(
  { name: 'task-actors', agents: { w: './echo.mjs' }, tasks: [{ id: 'a', agent: 'w', retries: 2, timeoutMs: 500 }] },
  { baseDir: fileURLToPath(new URL('../fixtures/agents/', import.meta.url)) },
)
const config = resolveConfig({})
const error: AttemptError = { code: 'ERR_TASK_FAILED', message: 'no' }

const event: fc.Arbitrary<TaskEvent> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<TaskEvent>({ type: 'DEPS_DONE' }, { type: 'START' }) },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('SUCCEED' as const),
      output: fc.nat(),
      cached: fc.constantFrom<true | undefined>(true, undefined),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom<TaskEvent>(
      { type: 'FAIL', error },
      { type: 'FAIL', error: { ...error, retryable: false } },
      { type: 'TIMEOUT' },
      { type: 'WAIT' },
      { type: 'RESUME' },
      { type: 'HOLD' },
      { type: 'APPROVE' },
      { type: 'SKIP', error: { code: 'ERR_DEPENDENCY_FAILED', message: 'skip' } },
      { type: 'REJECT', error: { code: 'ERR_APPROVAL_REJECTED', message: 'rejected' } },
      { type: 'CANCEL', error: { code: 'ERR_CANCELLED', message: 'cancelled' } },
      { type: 'ABORT', error: { code: 'ERR_BUDGET_EXCEEDED', message: 'over' } },
      { type: 'RATE_LIMITED', error, until: 5000, maxRateLimits: 1 },
      { type: 'RESTORE', output: 'old', attempts: 2 },
    ),
  },
)

/** A clock that moves 7 ms on each read, so a wrong read shows in the timings. */
function clock() {
  let now = 1000
  return { now: () => (now += 7), retryDelay: (attempt: number) => 100 * attempt }
}

describe('TaskActors', () => {
  it('reports the changes, contexts and result a task actor would, for any events', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 14 }), (events) => {
        const changes: TaskChange[] = []
        const root = createActor(setup({}).createMachine({ id: 'run' })).start()
        const tasks = new TaskActors(plan, config, clock(), root, (change) => changes.push(change))
        const env = clock()
        const actor = createActor(taskMachine, { input: { maxAttempts: 3, timeoutMs: 500, env } }).start()
        const expected: TaskChange[] = []
        for (const e of events) {
          if (actor.getSnapshot().status === 'done') break
          const from = actor.getSnapshot().value as TaskState
          actor.send(e)
          tasks.send(0, e)
          const { value, context } = actor.getSnapshot()
          const to = value as TaskState
          const { attempt, error: failure, notBefore } = context
          if (to !== from) expected.push({ task: 0, from, to, attempt, error: failure, notBefore })
          expect(tasks.stateOf(0)).toBe(to)
          if (!TERMINAL_STATES.has(to) && to !== 'PENDING' && to !== 'QUEUED') {
            const { env: _a, ...got } = tasks.contextOf(0)
            const { env: _b, ...want } = context
            expect(got).toEqual(want)
          }
        }
        expect(changes).toEqual(expected)
        const { value, context } = actor.getSnapshot()
        if (TERMINAL_STATES.has(value as TaskState)) expect(tasks.resultOf(0)).toEqual(taskResult(value as TaskState, context))
        else expect(tasks.resultOf(0)).toBeUndefined()
        if (TERMINAL_STATES.has(value as TaskState)) expect(tasks.live).toBe(0)
      }),
      { numRuns: 500 },
    )
  })

  it('gives a task that only runs and succeeds no actor, and releases it when it ends', () => {
    const changes: TaskChange[] = []
    const root = createActor(setup({}).createMachine({ id: 'run' })).start()
    const tasks = new TaskActors(plan, config, clock(), root, (change) => changes.push(change))
    tasks.send(0, { type: 'DEPS_DONE' })
    tasks.send(0, { type: 'START' })
    expect([tasks.stateOf(0), tasks.live, root.getSnapshot().children]).toEqual(['RUNNING', 1, {}])
    tasks.send(0, { type: 'SUCCEED', output: 42 })
    expect([tasks.live, changes.map((c) => c.to)]).toEqual([0, ['QUEUED', 'RUNNING', 'COMPLETED']])
    expect(tasks.resultOf(0)).toEqual({ state: 'COMPLETED', attempts: 1, startedAt: 1007, finishedAt: 1014, durationMs: 7, output: 42 })
  })
})
