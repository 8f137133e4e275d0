import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { formatSummary, verdictReason } from '../../src/cli/summary.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { speedupFigures } from '../../src/runtime/schedule/speedup.ts'
import type { Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
const task = (id: string, file: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: join(agents, file), input: { ms: 30 }, ...extra })

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function run(plan: Plan): Promise<RunResult> {
  runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
  return runtime.run(plan).result
}

const four: Plan = { name: 'four', tasks: ['a', 'b', 'c', 'd'].map((id) => task(id, 'sleep.mjs')) }

describe('run summary figures', () => {
  it('peakConcurrency: four independent tasks at maxParallel 2 peak at 2 running', async () => {
    expect((await run(four)).peakConcurrency).toBe(2)
  })

  it('timeSavedMs is sequentialMs − makespanMs', async () => {
    const result = await run(four)
    expect(result.timeSavedMs).toBe(result.sequentialMs - result.makespanMs)
  })

  it('successRate is completed / tasks meant to run', async () => {
    const result = await run({ name: 'half', tasks: [task('ok', 'sleep.mjs'), task('bad', 'throw.mjs', { retries: 0 })] })
    expect(result.successRate).toBe(0.5)
  })

  it('agentUtilization: one entry per agent, its busy time over the makespan', async () => {
    const result = await run({ name: 'two-agents', tasks: [task('s', 'sleep.mjs'), task('e', 'echo.mjs')] })
    const agentsUsed = Object.keys(result.agentUtilization!).sort()
    expect(agentsUsed).toHaveLength(2)
    const sleepAgent = agentsUsed.find((a) => a.includes('sleep'))!
    expect(result.agentUtilization![sleepAgent]).toBe(Math.round((result.tasks.s!.durationMs! / result.makespanMs) * 1000) / 1000)
  })

  it('the CLI summary shows time saved, success rate and peak concurrency', async () => {
    const text = formatSummary(await run(four))
    expect(text).toMatch(/saved .+ · success 100 % · peak 2 running/)
  })
})

describe('speedup figures are consistent (regressions from issue 25)', () => {
  const chain = { deps: [[], [0]], dependents: [[1], []] }
  const span = (startedAt: number, finishedAt: number, durationMs = finishedAt - startedAt) => ({ startedAt, finishedAt, durationMs })

  it('the lower bound is never above the makespan (regression: makespan 1610, lowerBound 2271)', () => {
    // Attempts measured longer than their interval (overlapping attempts): the raw path exceeds the makespan.
    const figures = speedupFigures(chain, [0, 1], [span(0, 800, 1200), span(800, 1610, 1071)], 4)
    expect(figures.lowerBoundMs).toBeLessThanOrEqual(figures.makespanMs)
  })

  it('efficiency stays within 0–1 when more tasks ran at once than the cores it was judged against (regression: 156–332 %)', () => {
    const alone = { deps: [[], [], [], []], dependents: [[], [], [], []] }
    const figures = speedupFigures(alone, [0, 1, 2, 3], [span(0, 100), span(0, 100), span(0, 100), span(0, 100)], 2, 4)
    expect([figures.parallelism, figures.efficiency]).toEqual([4, 1])
  })

  it('the verdict names the bound that decided: the slots, when the work spread over them is longer than the path', () => {
    const alone = { deps: [[], [], [], []], dependents: [[], [], [], []] }
    const figures = speedupFigures(alone, [0, 1, 2, 3], [span(0, 100), span(0, 100), span(100, 200), span(100, 200)], 2, 2)
    expect(figures.boundedBy).toBe('slots')
    const result = { ...figures, maxParallel: 64 } as unknown as RunResult
    expect(verdictReason(result)).toContain('the work spread over 2 slots')
  })

  it('successRate leaves out tasks skipped by their condition (regression: they counted as failures)', async () => {
    const result = await run({ name: 'when', tasks: [task('ok', 'sleep.mjs'), task('never', 'sleep.mjs', { dependsOn: ['ok'], when: 'false' })] })
    expect(result.tasks.never!.state).toBe('SKIPPED')
    expect(result.successRate).toBe(1)
  })

  it('a cancelled run has no verdict', async () => {
    runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const handle = runtime.run({ name: 'c', tasks: [task('slow', 'sleep.mjs', { input: { ms: 5000 } })] })
    handle.on('task:state', (e) => e.state === 'RUNNING' && void handle.cancel())
    const result = await handle.result
    expect(result.status).toBe('cancelled')
    expect(result.parallelization).toBeUndefined()
    expect(formatSummary(result)).not.toContain('verdict')
  })

  it('a run whose agent fails to load has no verdict', async () => {
    const result = await run({ name: 'load', tasks: [task('x', 'load-error.mjs')] })
    expect(result.status).toBe('failed')
    expect(result.parallelization).toBeUndefined()
  })
})
