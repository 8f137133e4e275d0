import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import { eventually, survivors } from '../processes/survivors.ts'

const agent = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'agents', 'exec-agent.mjs')
let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 200, governor: { enabled: false }, checkpoint: { enabled: false } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

describe('ctx.exec', () => {
  it('resolves with the exit code and the output tails', async () => {
    const result = await runtime.run({ name: 'exec', tasks: [{ id: 'e', agent, input: { command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'] } }] }).result
    expect(result.tasks.e?.output).toEqual({ exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n' })
  })

  it('a timed-out attempt leaves no process of its exec groups behind', async () => {
    const mark = `exec-${randomUUID()}`
    const run = runtime.run({ name: 'exec', tasks: [{ id: 'e', agent, retries: 0, timeoutMs: 1_500, input: { command: 'sh', args: ['-c', 'sleep 100 & sleep 100'], mark } }] })
    expect(await eventually(() => survivors(mark).length === 3)).toBe(true)
    const result = await run.result
    expect(result.tasks.e?.state).not.toBe('COMPLETED')
    expect(await eventually(() => survivors(mark).length === 0)).toBe(true)
  })
})
