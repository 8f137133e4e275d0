import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { formatSummary } from '../../src/cli/summary.ts'
import type { RunResult } from '../../src/runtime/core/result.ts'
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

  it('successRate is completed / tasks', async () => {
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
