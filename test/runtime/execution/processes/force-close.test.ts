import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { eventually, survivors } from './survivors.ts'

describe('runtime.close({ force: true })', () => {
  // Regression: close awaited every run before executor.close(true), so a group that ignores
  // SIGTERM kept the close waiting for the whole cancelGraceMs (20 s here; the test times out at 10 s).
  it('kills process groups at once instead of waiting for the grace period', { timeout: 10_000 }, async () => {
    const mark = randomUUID()
    const runtime = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 20_000, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const plan = { name: 'stubborn', agents: { x: { kind: 'command', run: "trap '' TERM; sleep 100 & sleep 100; wait", env: { TROUPE_MARK: mark } } }, tasks: [{ id: 't', agent: 'x', retries: 0 }] } as Plan
    const run = runtime.run(plan)
    expect(await eventually(() => survivors(mark).length >= 2)).toBe(true)
    await runtime.close({ force: true })
    expect((await run.result).tasks.t?.state).not.toBe('COMPLETED')
    expect(await eventually(() => survivors(mark).length === 0, 20)).toBe(true)
  })
})
