import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { initialRunState, phaseOf, reduceRun, stopReasonOf, type RunEffect, type RunEvent, type RunState } from '../../src/actors/run-reducer.ts'
import type { StopReason } from '../../src/actors/run-lifecycle.ts'
import type { TaskState } from '../../src/actors/task-machine.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'

// The reducer's invariants over random event sequences, as the interpreter would feed them:
// the lifecycle only moves forward (running ⇄ paused aside), the result is recorded once, a
// stopped run's reason never changes and it arms no retry, and no event makes it loop.
const plan = compilePlan(
  { name: 'properties', agents: { w: './echo.mjs' }, tasks: [{ id: 'a', agent: 'w' }, { id: 'b', agent: 'w' }, { id: 'c', agent: 'w' }] },
  { baseDir: fileURLToPath(new URL('../fixtures/agents/', import.meta.url)) },
)

const ORDER = { running: 0, paused: 0, stopping: 1, recording: 2, ended: 3 } as const

const reasons: fc.Arbitrary<StopReason> = fc.constantFrom<StopReason>(
  { kind: 'cancel', error: { code: 'ERR_CANCELLED', message: 'cancelled' } },
  { kind: 'fail', error: { code: 'ERR_TASK_FAILED', message: 'failed' } },
  { kind: 'budget-pause', error: { code: 'ERR_BUDGET_EXCEEDED', message: 'paused' } },
  { kind: 'budget-fail', error: { code: 'ERR_BUDGET_EXCEEDED', message: 'over' } },
)

/** One step of the world, resolved against what the harness knows (which retries are armed). */
type Step =
  | { readonly kind: 'answer'; readonly task: number; readonly outcome: 'ok' | 'fail' | 'crash' | 'rate'; readonly live: boolean; readonly costUsd: number }
  | { readonly kind: 'change'; readonly task: number; readonly from: TaskState; readonly to: TaskState; readonly reused: boolean }
  | { readonly kind: 'spent'; readonly spentUsd: number }
  | { readonly kind: 'stop'; readonly reason: StopReason }
  | { readonly kind: 'budget'; readonly maxCostUsd: number | null; readonly spentUsd: number }
  | { readonly kind: 'retry-due'; readonly pick: number }
  | { readonly kind: 'drained'; readonly inFlight: number; readonly done: boolean; readonly resumable: boolean }
  | { readonly kind: 'none-started'; readonly ready: number; readonly inFlight: number; readonly affordable: boolean; readonly reserved: boolean; readonly spentUsd: number }

const task = fc.nat({ max: 2 })
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('answer' as const), task, outcome: fc.constantFrom('ok' as const, 'fail' as const, 'crash' as const, 'rate' as const), live: fc.boolean(), costUsd: fc.constantFrom(0, 0.3) }),
  fc.record({
    kind: fc.constant('change' as const),
    task,
    from: fc.constantFrom<TaskState>('PENDING', 'QUEUED', 'RUNNING', 'WAITING', 'AWAITING_APPROVAL'),
    to: fc.constantFrom<TaskState>('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'),
    reused: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('spent' as const), spentUsd: fc.constantFrom(0.1, 0.95, 1.5) }),
  fc.record({ kind: fc.constant('stop' as const), reason: reasons }),
  fc.record({ kind: fc.constant('budget' as const), maxCostUsd: fc.constantFrom(null, 0.5, 5), spentUsd: fc.constantFrom(0.1, 1.5) }),
  fc.record({ kind: fc.constant('retry-due' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('drained' as const), inFlight: fc.nat({ max: 1 }), done: fc.boolean(), resumable: fc.boolean() }),
  fc.record({
    kind: fc.constant('none-started' as const),
    ready: fc.nat({ max: 2 }),
    inFlight: fc.nat({ max: 1 }),
    affordable: fc.boolean(),
    reserved: fc.boolean(),
    spentUsd: fc.constantFrom(0.5, 0.95, 1.5),
  }),
)

describe('the run reducer, on random event sequences', () => {
  it('moves the lifecycle forward only, records once, keeps the first stop reason, arms no retry once stopped, and never loops', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.constantFrom<'pause' | 'fail'>('pause', 'fail'), (steps, onExceeded) => {
        let state: RunState = initialRunState({ plan, supervision: { maxRestarts: 1, periodMs: 1000 }, rateLimitRetries: 2 }, { maxCostUsd: 1, onExceeded })
        const armed = new Set<number>()
        let records = 0
        let now = 0
        let stoppedWith: StopReason | undefined

        const dispatch = (event: RunEvent, depth: number): void => {
          // A reducer that re-dispatches without end would recurse past any bound: none may.
          expect(depth).toBeLessThan(5)
          const before = phaseOf(state)
          const [next, effects] = reduceRun(state, event)
          state = next
          const after = phaseOf(state)
          expect(ORDER[after]).toBeGreaterThanOrEqual(ORDER[before])
          if (after === 'stopping' && stoppedWith === undefined) stoppedWith = stopReasonOf(state)
          if (stoppedWith !== undefined) expect(stopReasonOf(state)).toBe(stoppedWith)
          expect(state.retrying).toBeGreaterThanOrEqual(0)
          // A second stop of a run already stopping (or over) changes nothing and does nothing.
          if (event.type === 'stop' && ORDER[before] > 0) expect(effects).toEqual([])
          for (const effect of effects) perform(effect, depth, after)
        }
        const perform = (effect: RunEffect, depth: number, phase: string): void => {
          if (effect.type === 'record') records++
          else if (effect.type === 'arm-retry') {
            expect(['running', 'paused']).toContain(phase)
            armed.add(effect.task)
          } else if (effect.type === 'clear-retries') armed.clear()
          else if (effect.type === 'dispatch' || effect.type === 'dispatch-later') dispatch(effect.event, depth + 1)
        }

        for (const s of steps) {
          now += 10
          if (records > 0 && phaseOf(state) === 'recording') dispatch({ type: 'recorded' }, 0)
          // Settled means every task ended and no attempt is in flight: no task changes any more.
          if (records > 0 && (s.kind === 'answer' || s.kind === 'change')) continue
          switch (s.kind) {
            case 'answer': {
              const usage = s.costUsd > 0 ? { costUsd: s.costUsd, tokens: 1, apiCalls: 1 } : undefined
              const error =
                s.outcome === 'crash'
                  ? { code: 'ERR_WORKER_CRASH' as const, message: 'gone' }
                  : s.outcome === 'rate'
                    ? { code: 'ERR_RATE_LIMITED' as const, message: '429', rateLimitedUntil: now + 100 }
                    : { code: 'ERR_TASK_FAILED' as const, message: 'no' }
              const result = s.outcome === 'ok' ? { ok: true as const, output: 1, usage } : { ok: false as const, error, usage }
              dispatch({ type: 'answer', task: s.task, result, live: s.live, now }, 0)
              break
            }
            case 'change': {
              const change = { task: s.task, from: s.from, to: s.to, attempt: 1, error: undefined, notBefore: now + 5 }
              // A task with a retry armed is QUEUED and not live: it changes only by its timer or a cancel.
              if (armed.has(s.task) && s.to !== 'CANCELLED') break
              dispatch({ type: 'transition', change }, 0)
              dispatch({ type: 'changed', change, reused: s.reused }, 0)
              break
            }
            case 'spent':
              dispatch({ type: 'spent', taskId: 'a', spentUsd: s.spentUsd }, 0)
              break
            case 'stop':
              dispatch({ type: 'stop', reason: s.reason }, 0)
              break
            case 'budget':
              dispatch({ type: 'set-budget', maxCostUsd: s.maxCostUsd, spentUsd: s.spentUsd }, 0)
              break
            case 'retry-due': {
              if (armed.size === 0) break
              const due = [...armed][s.pick % armed.size]!
              armed.delete(due)
              dispatch({ type: 'retry-due', task: due }, 0)
              break
            }
            case 'drained':
              dispatch({ type: 'drained', inFlight: s.inFlight, done: s.done, resumable: s.resumable }, 0)
              break
            case 'none-started':
              dispatch({ type: 'none-started', ready: s.ready, inFlight: s.inFlight, affordable: s.affordable, reserved: s.reserved, spentUsd: s.spentUsd }, 0)
              break
          }
          expect(state.retrying).toBe(armed.size)
          expect(records).toBeLessThanOrEqual(1)
        }
      }),
      { numRuns: 400 },
    )
  })
})
