import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveConfig } from '../../../../src/runtime/core/config.ts'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import { troupeErrorOf } from '../../../helpers/errors.ts'
import { eventually, survivors } from './survivors.ts'

/** A node process that fills `mb` MB of Buffers (touched, so resident), then waits `holdMs`. */
const hog = (mb: number, holdMs: number) =>
  `const b = []; for (let i = 0; i < ${mb}; i += 16) b.push(Buffer.alloc(16 * 1024 * 1024, 1)); setTimeout(() => console.log(b.length), ${holdMs})`

/** One command task; the hog runs as a child of a shell, so the cap must count the whole group. */
const plan = (mark: string, mb: number, holdMs: number): Plan =>
  ({
    name: 'memory-cap',
    agents: { hog: { kind: 'command', run: `"${process.execPath}" -e '${hog(mb, holdMs)}'; exit $?`, env: { TROUPE_MARK: mark } } },
    tasks: [{ id: 't', agent: 'hog' }],
  }) as Plan

describe.skipIf(process.platform !== 'linux')('process agents: governor.memory.perProcessMb', () => {
  let runtime: Runtime | undefined
  afterEach(async () => {
    await runtime?.close({ force: true })
    runtime = undefined
  })

  const capped = (mb: number) => createRuntime({ config: { governor: { memory: { perProcessMb: mb } }, checkpoint: { enabled: false } } })

  it('kills a process group whose resident memory goes over the cap and fails the attempt with ERR_WORKER_OOM', async () => {
    runtime = capped(128)
    const mark = randomUUID()
    const result = await runtime.run(plan(mark, 512, 30_000)).result
    expect(result.tasks.t).toMatchObject({ state: 'FAILED', error: { code: 'ERR_WORKER_OOM' } })
    expect(result.tasks.t!.error!.message).toContain('governor.memory.perProcessMb (128 MB)')
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })

  it('lets a process group under the cap complete', async () => {
    runtime = capped(512)
    const result = await runtime.run(plan(randomUUID(), 32, 600)).result
    expect(result.tasks.t).toMatchObject({ state: 'COMPLETED', output: { exitCode: 0 } })
  })

  it('reports the peak resident memory of a capped group to the governor', async () => {
    runtime = capped(512)
    await runtime.run(plan(randomUUID(), 96, 800)).result
    expect(runtime.agentDemand()['hog']!.memoryMb).toBeGreaterThanOrEqual(96)
  })
})

describe('governor.memory.perProcessMb in config', () => {
  it('caps nothing by default', () => {
    expect(resolveConfig({}).governor.memory.perProcessMb).toBeNull()
  })

  it('rejects a cap that is not a positive integer, naming the key and the value', () => {
    const error = troupeErrorOf(() => resolveConfig({ governor: { memory: { perProcessMb: 0 } } }))
    expect(error.code).toBe('ERR_CONFIG_INVALID')
    expect(error.message).toContain('perProcessMb')
    expect(error.message).toContain('0')
  })
})
