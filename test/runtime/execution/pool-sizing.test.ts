import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ThreadSlots } from '../../../src/runtime/execution/threads/thread-slots.ts'
import type { CompiledTask, Plan } from '../../../src/runtime/plan/plan.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { createRuntime, type RuntimeOptions } from '../../../src/runtime/runtime.ts'

const sleep = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'sleep.mjs')

/** The most tasks running at the same moment, from their start and finish times. */
function peakOverlap(result: RunResult): number {
  const edges = Object.values(result.tasks).flatMap((t) => [
    [t.startedAt!, 1],
    [t.finishedAt!, -1],
  ])
  // At equal times a finish comes before a start: touching intervals do not overlap.
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!)
  let now = 0
  let peak = 0
  for (const [, delta] of edges) peak = Math.max(peak, (now += delta!))
  return peak
}

const sleepers = (n: number, maxParallel: number): Plan => ({
  name: 'sleepers',
  maxParallel,
  tasks: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, agent: sleep, input: { ms: 400 } })),
})

async function runOnce(plan: Plan, config: RuntimeOptions['config']): Promise<RunResult> {
  const runtime = createRuntime({ config })
  try {
    return await runtime.run(plan).result
  } finally {
    await runtime.close({ force: true })
  }
}

describe('pool sizing', () => {
  it('runs 40 sleeping module agents at once when the plan says maxParallel 40 (the default pool capped it at 16)', async () => {
    const result = await runOnce(sleepers(40, 40), { maxParallel: 2, governor: { enabled: false }, checkpoint: { enabled: false } })
    expect([result.status, peakOverlap(result)]).toEqual(['completed', 40])
  })

  it('keeps explicit pool.maxThreads: no more module agents at once than threads', async () => {
    const result = await runOnce(sleepers(6, 6), { pool: { minThreads: 1, maxThreads: 3 }, governor: { enabled: false }, checkpoint: { enabled: false } })
    expect([result.status, peakOverlap(result)]).toEqual(['completed', 3])
  })
})

describe('ThreadSlots (the thread gate)', () => {
  const module = { agentSpec: { kind: 'module', name: 'm', moduleUrl: 'file:///m.mjs' } } as unknown as CompiledTask
  const command = { agentSpec: { kind: 'command', name: 'c' } } as unknown as CompiledTask

  it('refuses a module agent once every slot is taken', () => {
    const slots = new ThreadSlots(1)
    expect([slots.tryAcquire('r', module), slots.tryAcquire('r', module)]).toEqual([true, false])
  })

  it('lets agents that need no thread pass when every slot is taken', () => {
    const slots = new ThreadSlots(1)
    slots.tryAcquire('r', module)
    expect([slots.tryAcquire('r', command), slots.tryAcquire('r', command), slots.inFlight]).toEqual([true, true, 1])
  })

  it('frees a slot when a module agent releases it', () => {
    const slots = new ThreadSlots(1)
    slots.tryAcquire('r', module)
    slots.release('r', module)
    expect(slots.tryAcquire('r', module)).toBe(true)
  })
})
