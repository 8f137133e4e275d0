import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TaskStateEvent } from '../../src/runtime/report/events.ts'
import type { Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { peakRunning, runningIntervals } from '../helpers/task-events.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
const agent = (name: string) => join(agents, name)
const task = (id: string, name: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent(name), ...extra })

let runtime: Runtime

async function execute(plan: Plan, options: Parameters<Runtime['run']>[1] = {}): Promise<{ result: RunResult; events: TaskStateEvent[] }> {
  const run = runtime.run(plan, options)
  const events: TaskStateEvent[] = []
  run.on('task:state', (e) => events.push(e))
  return { result: await run.result, events }
}

beforeAll(() => {
  // The governor reacts to this machine's real load; these tests are about scheduling.
  runtime = createRuntime({
    config: { maxParallel: 2, pool: { minThreads: 2, maxThreads: 4 }, checkpoint: { enabled: false }, governor: { enabled: false } },
  })
})

afterAll(async () => {
  await runtime.close()
})

describe('a diamond plan (a → b, a → c, b + c → d)', () => {
  const diamond = (b = 'sleep.mjs'): Plan => ({
    name: 'diamond',
    tasks: [
      task('a', 'sleep.mjs', { input: { ms: 30 } }),
      task('b', b, { input: { ms: 150 }, dependsOn: ['a'] }),
      task('c', 'sleep.mjs', { input: { ms: 150 }, dependsOn: ['a'] }),
      task('d', 'echo.mjs', { dependsOn: ['b', 'c'] }),
    ],
  })

  it('runs in dependency order', async () => {
    const { result, events } = await execute(diamond())
    expect(result.status).toBe('completed')
    const spans = runningIntervals(events)
    expect(spans.get('b')![0]).toBeGreaterThanOrEqual(spans.get('a')![1])
    expect(spans.get('c')![0]).toBeGreaterThanOrEqual(spans.get('a')![1])
    expect(spans.get('d')![0]).toBeGreaterThanOrEqual(Math.max(spans.get('b')![1], spans.get('c')![1]))
  })

  it('overlaps b and c in time', async () => {
    const { events } = await execute(diamond())
    const spans = runningIntervals(events)
    const [b, c] = [spans.get('b')!, spans.get('c')!]
    expect(b[0]).toBeLessThan(c[1])
    expect(c[0]).toBeLessThan(b[1])
  })

  it('skips d but not c when b fails', async () => {
    const { result } = await execute(diamond('throw.mjs'))
    expect(result.status).toBe('failed')
    expect(result.tasks.b!.state).toBe('FAILED')
    expect(result.tasks.c!.state).toBe('COMPLETED')
    expect(result.tasks.d!.state).toBe('SKIPPED')
    expect(result.tasks.d!.error?.code).toBe('ERR_DEPENDENCY_FAILED')
    expect(result.totals).toEqual({ tasks: 4, completed: 2, failed: 1, skipped: 1, cancelled: 0, reused: 0, cached: 0 })
  })

  it('gives each task the outputs of its direct dependencies', async () => {
    const { result } = await execute(diamond())
    expect((result.tasks.d!.output as { dependencies: unknown }).dependencies).toEqual({ b: { taskId: 'b' }, c: { taskId: 'c' } })
  })
})

describe('parallelism', () => {
  it('never runs more than maxParallel tasks at once, and uses all of them', async () => {
    const tasks = Array.from({ length: 8 }, (_, i) => task(`cpu${i}`, 'spin.mjs', { input: { ms: 60 } }))
    const { result, events } = await execute({ tasks }, { maxParallel: 2 })
    expect(result.totals.completed).toBe(8)
    expect(peakRunning(events)).toBe(2)
  })

  it('runs one task at a time with the sequential strategy', async () => {
    const tasks = Array.from({ length: 4 }, (_, i) => task(`s${i}`, 'sleep.mjs', { input: { ms: 10 } }))
    const { result, events } = await execute({ tasks }, { strategy: 'sequential', maxParallel: 4 })
    expect(result.maxParallel).toBe(1)
    expect(peakRunning(events)).toBe(1)
  })

  it('reports speedup as sequential time over makespan', async () => {
    const tasks = Array.from({ length: 4 }, (_, i) => task(`p${i}`, 'sleep.mjs', { input: { ms: 40 } }))
    const { result } = await execute({ tasks })
    expect(result.speedup).toBeCloseTo(result.sequentialMs / result.makespanMs, 2)
    expect(result.efficiency).toBeCloseTo(result.speedup / result.maxParallel, 2)
    expect(result.lowerBoundMs).toBe(Math.max(result.criticalPathMs, result.sequentialMs / result.maxParallel))
  })

  it('runs several plans at once on one runtime', async () => {
    const plan = (p: string): Plan => ({ tasks: [task(`${p}1`, 'sleep.mjs'), task(`${p}2`, 'sleep.mjs', { dependsOn: [`${p}1`] })] })
    const [x, y] = await Promise.all([execute(plan('x')), execute(plan('y'))])
    expect(x.result.status).toBe('completed')
    expect(y.result.status).toBe('completed')
  })
})

describe('agent failures', () => {
  it('fails a throwing agent with ERR_TASK_FAILED, keeping name, message and stack as the cause', async () => {
    const { result } = await execute({ tasks: [task('t', 'throw.mjs', { input: { message: 'nope' } })] })
    const error = result.tasks.t!.error!
    expect(error.code).toBe('ERR_TASK_FAILED')
    expect(error.cause).toMatchObject({ name: 'RangeError', message: 'nope' })
    expect(error.cause?.stack).toContain('throw.mjs')
  })

  it('fails only the task whose agent calls process.exit, with ERR_WORKER_EXIT', async () => {
    const { result } = await execute({
      tasks: [task('exit', 'exit.mjs', { input: { code: 1 } }), task('ok1', 'sleep.mjs'), task('ok2', 'sleep.mjs')],
    })
    expect(result.tasks.exit!.error?.code).toBe('ERR_WORKER_EXIT')
    expect(result.tasks.ok1!.state).toBe('COMPLETED')
    expect(result.tasks.ok2!.state).toBe('COMPLETED')
  })

  it('keeps running plans after a worker exited', async () => {
    await execute({ tasks: [task('exit', 'exit.mjs')] })
    const { result } = await execute({ tasks: [task('after', 'echo.mjs')] })
    expect(result.status).toBe('completed')
  })

  it('fails a module that throws on import with ERR_AGENT_LOAD', async () => {
    const { result } = await execute({ tasks: [task('t', 'load-error.mjs')] })
    expect(result.tasks.t!.error?.code).toBe('ERR_AGENT_LOAD')
    expect(result.tasks.t!.error?.message).toContain('load-error.mjs')
  })

  it('fails a module without a default function export with ERR_AGENT_LOAD', async () => {
    const { result } = await execute({ tasks: [task('t', 'no-default.mjs')] })
    expect(result.tasks.t!.error?.code).toBe('ERR_AGENT_LOAD')
    expect(result.tasks.t!.error?.message).toContain('default export is missing')
  })
})

describe('agent context', () => {
  it('delivers progress and log events before the task completes', async () => {
    const run = runtime.run({ tasks: [task('p', 'progress.mjs', { input: { steps: 3 } })] })
    const seen: string[] = []
    run.on('task:progress', (e) => seen.push(`progress ${e.fraction.toFixed(2)} ${e.message}`))
    run.on('task:log', (e) => seen.push(`log ${e.message}`))
    run.on('task:state', (e) => seen.push(e.state))
    await run.result
    expect(seen).toEqual(['QUEUED', 'RUNNING', 'progress 0.33 step 1', 'progress 0.67 step 2', 'progress 1.00 step 3', 'log done', 'COMPLETED'])
  })

  it('passes taskId, runId and a 1-based attempt', async () => {
    const { result } = await execute({ tasks: [task('e', 'echo.mjs', { input: 42 })] }, { runId: 'ctx-check' })
    expect(result.tasks.e!.output).toMatchObject({ input: 42, taskId: 'e', attempt: 1 })
    expect(result.runId).toBe('ctx-check')
  })

  it('loads a TypeScript agent', async () => {
    const { result } = await execute({ tasks: [task('ts', 'typed.ts', { input: { a: 2, b: 3 } })] })
    expect(result.tasks.ts!.output).toBe(5)
  })
})

describe('cancellation', () => {
  it('cancels every task not yet ended and reports the run as cancelled', async () => {
    const run = runtime.run({
      tasks: [task('long', 'sleep.mjs', { input: { ms: 5000 } }), task('next', 'echo.mjs', { dependsOn: ['long'] })],
    })
    run.on('task:state', (e) => {
      if (e.taskId === 'long' && e.state === 'RUNNING') void run.cancel('test cancel')
    })
    const result = await run.result
    expect(result.status).toBe('cancelled')
    expect(result.tasks.long!.state).toBe('CANCELLED')
    expect(result.tasks.next!.state).toBe('CANCELLED')
    expect(result.error).toEqual({ code: 'ERR_CANCELLED', message: 'test cancel' })
  })

  it('cancels through an AbortSignal', async () => {
    const controller = new AbortController()
    const run = runtime.run({ tasks: [task('long', 'sleep.mjs', { input: { ms: 5000 } })] }, { signal: controller.signal })
    run.on('task:state', (e) => e.state === 'RUNNING' && controller.abort())
    expect((await run.result).tasks.long!.state).toBe('CANCELLED')
  })

  it('aborts ctx.signal of an agent that watches it', async () => {
    const run = runtime.run({ tasks: [task('w', 'watch-signal.mjs')] })
    const logs: string[] = []
    run.on('task:log', (e) => {
      logs.push(e.message)
      if (e.message === 'watching') void run.cancel()
    })
    await run.result
    expect(logs).toEqual(['watching', 'saw abort'])
  })
})

describe('runtime', () => {
  it('re-emits the events of its runs', async () => {
    const seen: string[] = []
    const listener = (e: TaskStateEvent) => seen.push(`${e.taskId}:${e.state}`)
    runtime.on('task:state', listener)
    await execute({ tasks: [task('r', 'echo.mjs')] })
    runtime.off('task:state', listener)
    expect(seen).toEqual(['r:QUEUED', 'r:RUNNING', 'r:COMPLETED'])
  })

  it('rejects maxParallel 0 with ERR_ARGUMENT_INVALID', () => {
    expect(() => runtime.run({ tasks: [] }, { maxParallel: 0 })).toThrow(expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }))
  })

  it('rejects an invalid plan synchronously with its code', () => {
    expect(() => runtime.run({ tasks: [{ id: 'a', agent: agent('echo.mjs'), dependsOn: ['zzz'] }] })).toThrow(
      expect.objectContaining({ code: 'ERR_PLAN_UNKNOWN_DEPENDENCY' }),
    )
  })

  it('rejects an empty plan with ERR_PLAN_INVALID (a plan runs at least one task)', () => {
    expect(() => runtime.run({ tasks: [] })).toThrow(expect.objectContaining({ code: 'ERR_PLAN_INVALID' }))
  })

  it('refuses new runs once closed', async () => {
    const other = createRuntime({ config: { pool: { minThreads: 0, maxThreads: 1 }, checkpoint: { enabled: false } } })
    await other.close()
    expect(() => other.run({ tasks: [] })).toThrow(expect.objectContaining({ code: 'ERR_RUNTIME_CLOSED' }))
  })
})

describe('reserved names as task ids', () => {
  const reserved = ['__proto__', 'constructor', 'toString']
  const plan: Plan = {
    name: 'reserved-ids',
    tasks: [...reserved.map((id) => task(id, 'echo.mjs', { input: { id } })), task('child', 'echo.mjs', { dependsOn: reserved })],
  }

  it('task id __proto__ is missing from RunResult.tasks', async () => {
    const result = await runtime.run(plan).result
    expect(result.status).toBe('completed')
    for (const id of reserved) expect(Object.hasOwn(result.tasks, id) && result.tasks[id]!.state).toBe('COMPLETED')
    expect(Object.keys(result.tasks).sort()).toEqual([...reserved, 'child'].sort())
  })

  it("outputs of tasks named __proto__, constructor, toString reach their dependent's ctx.dependencies", async () => {
    const result = await runtime.run(plan).result
    const dependencies = (result.tasks.child!.output as { dependencies: Record<string, { input: { id: string } }> }).dependencies
    for (const id of reserved) expect(Object.hasOwn(dependencies, id) && dependencies[id]!.input.id).toBe(id)
  })
})
