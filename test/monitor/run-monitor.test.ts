import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { GovernorMonitor } from '../../src/monitor/governor-monitor.ts'
import { RunMonitor } from '../../src/monitor/run-monitor.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import type { TaskState } from '../../src/actors/task-machine.ts'

const plan = compilePlan(
  {
    name: 'monitor',
    agents: { w: './echo.mjs' },
    tasks: [
      { id: 'a', agent: 'w', estimateMs: 1000 },
      { id: 'b', agent: 'w', estimateMs: 1000 },
      { id: 'c', agent: 'w', estimateMs: 1000, dependsOn: ['a', 'b'] },
    ],
  },
  { baseDir: fileURLToPath(new URL('../fixtures/agents/', import.meta.url)) },
)

function monitorAt(clock: { now: number }, maxParallel = 2) {
  return new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => maxParallel, startedAt: 0, now: () => clock.now })
}

function move(m: RunMonitor, taskId: string, previous: TaskState, state: TaskState, at: number, attempt = 1) {
  m.taskState({ runId: 'r', taskId, agent: 'w', state, previous, attempt, at })
}

describe('RunMonitor', () => {
  it('draws overlapping attempts on different slots and reuses a freed slot', () => {
    const clock = { now: 0 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    move(m, 'b', 'QUEUED', 'RUNNING', 100)
    move(m, 'a', 'RUNNING', 'COMPLETED', 500)
    move(m, 'b', 'RUNNING', 'COMPLETED', 600)
    move(m, 'c', 'QUEUED', 'RUNNING', 600)
    const slots = Object.fromEntries(m.snapshot().tasks.map((t) => [t.id, t.intervals.map((i) => i.slot)]))
    expect(slots).toEqual({ a: [0], b: [1], c: [0] })
  })

  it('marks a task whose output came from the task cache, and only that one', () => {
    const clock = { now: 0 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    m.taskState({ runId: 'r', taskId: 'a', agent: 'w', state: 'COMPLETED', previous: 'RUNNING', attempt: 1, at: 5, cached: true })
    move(m, 'b', 'QUEUED', 'RUNNING', 0)
    move(m, 'b', 'RUNNING', 'COMPLETED', 500)
    const byId = Object.fromEntries(m.snapshot().tasks.map((t) => [t.id, t]))
    expect(byId.a!.cached).toBe(true)
    expect(byId.b!.cached).toBeUndefined()
  })

  it("shows a task's repairs from the RunResult once the run ends, numbered and sanitised; none for a task without", () => {
    const clock = { now: 0 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    move(m, 'a', 'RUNNING', 'COMPLETED', 500)
    expect(m.snapshot().tasks[0]!.repairs).toBeUndefined()
    const repairs = [{ attempt: 1, reason: 'verify' as const, detail: 'npm test failed\u001b[31m\u202e' }]
    const result = { status: 'completed', finishedAt: 600, tasks: { a: { state: 'COMPLETED', repairs }, b: { state: 'COMPLETED' } } }
    m.runEnd({ runId: 'r', result } as unknown as Parameters<RunMonitor['runEnd']>[0])
    const byId = Object.fromEntries(m.snapshot().tasks.map((t) => [t.id, t]))
    expect(byId.a!.repairs).toEqual([{ number: 1, attempt: 1, reason: 'verify', detail: 'npm test failed�[31m�' }])
    expect(byId.b!.repairs).toBeUndefined()
  })

  it("shows a task's repairs as soon as its final state arrives, before the run ends (regression: only at run end)", () => {
    const m = monitorAt({ now: 0 })
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    const repairs = [{ attempt: 1, reason: 'check' as const, detail: 'exit 3\u202e' }]
    m.taskState({ runId: 'r', taskId: 'a', agent: 'w', state: 'COMPLETED', previous: 'RUNNING', attempt: 1, at: 5, repairs })
    expect(m.snapshot().tasks.find((t) => t.id === 'a')!.repairs).toEqual([{ number: 1, attempt: 1, reason: 'check', detail: 'exit 3�' }])
  })

  it("keeps a task's latest approval state, who decided and the reason sanitised", () => {
    const m = monitorAt({ now: 0 })
    m.taskApproval({ runId: 'r', taskId: 'a', state: 'awaiting', before: 'start', at: 1 })
    expect(m.snapshot().tasks[0]!.approval).toEqual({ state: 'awaiting', before: 'start', at: 1 })
    m.taskApproval({ runId: 'r', taskId: 'a', state: 'rejected', before: 'start', by: 'cli', reason: 'no\u202e', at: 2 })
    expect(m.snapshot().tasks[0]!.approval).toEqual({ state: 'rejected', before: 'start', by: 'cli', reason: 'no�', at: 2 })
    expect(m.snapshot().tasks[1]!.approval).toBeUndefined()
  })

  it('reports the speedup so far as worker time over wall time, running attempts included', () => {
    const clock = { now: 1000 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    move(m, 'b', 'QUEUED', 'RUNNING', 0)
    move(m, 'a', 'RUNNING', 'COMPLETED', 500)
    const s = m.snapshot()
    expect(s.busyMs).toBe(1500)
    expect(s.elapsedMs).toBe(1000)
    expect(s.speedup).toBe(1.5)
  })

  it('estimates the remaining time along the longest remaining chain', () => {
    const clock = { now: 400 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    move(m, 'b', 'QUEUED', 'RUNNING', 0)
    // a and b have 600 ms left of their 1000 ms estimates; c takes 1000 ms after them.
    expect(m.snapshot().etaMs).toBe(1600)
  })

  it('extrapolates a running task from its progress', () => {
    const clock = { now: 300 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    m.taskProgress({ runId: 'r', taskId: 'a', attempt: 1, fraction: 0.75, message: 'almost', at: 300 })
    move(m, 'b', 'PENDING', 'SKIPPED', 300)
    move(m, 'c', 'PENDING', 'SKIPPED', 300)
    expect(m.snapshot().etaMs).toBe(100)
  })

  it('ignores progress reported by an earlier attempt', () => {
    const m = monitorAt({ now: 0 })
    move(m, 'a', 'QUEUED', 'RUNNING', 0, 2)
    m.taskProgress({ runId: 'r', taskId: 'a', attempt: 1, fraction: 0.9, message: 'stale', at: 0 })
    expect(m.snapshot().tasks[0]!.fraction).toBeUndefined()
  })

  it('records every state a task went through', () => {
    const m = monitorAt({ now: 0 })
    move(m, 'a', 'PENDING', 'QUEUED', 0)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    move(m, 'a', 'RUNNING', 'QUEUED', 10, 1)
    move(m, 'a', 'QUEUED', 'RUNNING', 20, 2)
    move(m, 'a', 'RUNNING', 'COMPLETED', 30, 2)
    const a = m.snapshot().tasks[0]!
    expect(a.history).toEqual(['PENDING', 'QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'COMPLETED'])
    expect(a.intervals.map((i) => [i.attempt, i.start, i.end])).toEqual([
      [1, 0, 10],
      [2, 20, 30],
    ])
  })
})

describe('GovernorMonitor', () => {
  it('is n/a until the governor reports', () => {
    expect(new GovernorMonitor().view.status).toBe('n/a')
  })

  it('shows throttling with the reason and readings of the event', () => {
    const g = new GovernorMonitor()
    g.apply('governor:throttled', { reason: 'cpu', cpuPercent: 96, memoryPercent: 40, memoryUsedMb: 900, at: 5 })
    expect(g.view).toEqual({ status: 'throttled', reason: 'cpu', cpuPercent: 96, memoryPercent: 40, at: 5 })
    g.apply('governor:resumed', { reason: 'cpu', cpuPercent: 60, memoryPercent: 41, memoryUsedMb: 900, at: 9 })
    expect(g.view).toEqual({ status: 'ok', cpuPercent: 60, memoryPercent: 41, at: 9 })
  })

  it('counts the ETA down between completions (regression: it froze while tasks ran past their estimate)', () => {
    const clock = { now: 0 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    move(m, 'b', 'QUEUED', 'RUNNING', 0)
    // Past their 1000 ms estimates: the raw estimate is c's 1000 ms and stops changing.
    clock.now = 1500
    const first = m.snapshot().etaMs!
    clock.now = 1800
    const later = m.snapshot().etaMs!
    expect(first).toBe(1000)
    expect(later).toBe(700)
  })

  it('marks the interval of a failed attempt as failed, also when the task is retried', () => {
    const clock = { now: 0 }
    const m = monitorAt(clock)
    move(m, 'a', 'QUEUED', 'RUNNING', 0)
    m.taskState({ runId: 'r', taskId: 'a', agent: 'w', state: 'QUEUED', previous: 'RUNNING', attempt: 1, at: 100, error: { code: 'ERR_TASK_FAILED', message: 'x' } })
    move(m, 'a', 'QUEUED', 'RUNNING', 200, 2)
    move(m, 'a', 'RUNNING', 'COMPLETED', 300, 2)
    const a = m.snapshot().tasks.find((t) => t.id === 'a')!
    expect(a.intervals.map((i) => i.failed === true)).toEqual([true, false])
  })

  it('keeps a rate-limit pause until it is over', () => {
    const clock = { now: 0 }
    const m = monitorAt(clock)
    m.limitPaused({ runId: 'r', taskId: 'a', limits: ['llm', 'api'], until: 1000, at: 0 })
    expect(m.snapshot().pauses.map((p) => p.limits[0])).toEqual(['llm', 'api'])
    clock.now = 1000
    expect(m.snapshot().pauses).toEqual([])
  })
})
