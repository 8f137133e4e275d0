import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Monitor } from '../../../src/monitor/monitor.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'scratchpad-note.mjs')
let root: string
let runtime: Runtime

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-scratchpad-'))
  runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { dir: join(root, 'runs') } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
  rmSync(root, { recursive: true, force: true })
})

type Notes = { notes: { taskId: string; text: string; at: number }[] }

describe('the run scratchpad for module agents', () => {
  it('a note appended by one task is read by a later task and journaled in <runDir>/scratchpad.jsonl', async () => {
    const plan: Plan = { name: 'pad', tasks: [{ id: 'a', agent, input: { append: 'api lives in src/api.ts' } }, { id: 'b', agent, input: {}, dependsOn: ['a'] }] }
    const result = await runtime.run(plan, { runId: 'pad-1' }).result
    expect((result.tasks.b?.output as Notes).notes).toMatchObject([{ taskId: 'a', text: 'api lives in src/api.ts' }])
    const lines = readFileSync(join(root, 'runs', 'pad-1', 'scratchpad.jsonl'), 'utf8').trim().split('\n')
    expect(lines.map((line) => JSON.parse(line) as unknown)).toMatchObject([{ taskId: 'a', text: 'api lives in src/api.ts' }])
  })

  it('a resumed run starts with the notes taken before', async () => {
    const flag = join(root, 'go')
    const plan: Plan = {
      name: 'pad',
      tasks: [
        { id: 'a', agent, input: { append: 'note before the crash' } },
        { id: 'b', agent, input: { waitFor: flag }, dependsOn: ['a'], retries: 0 },
      ],
    }
    const first = await runtime.run(plan, { runId: 'pad-2' }).result
    expect(first.tasks.b?.state).toBe('FAILED')
    writeFileSync(flag, '')
    const resumed = await runtime.run(plan, { runId: 'pad-2' }).result
    expect(resumed.tasks.b?.state).toBe('COMPLETED')
    expect((resumed.tasks.b?.output as Notes).notes).toMatchObject([{ taskId: 'a', text: 'note before the crash' }])
  })

  it('each note is a scratchpad:note run event, folded into the monitor snapshot', async () => {
    const plan: Plan = { name: 'pad', tasks: [{ id: 'a', agent, input: { append: 'first note' } }] }
    const run = runtime.run(plan, { runId: 'pad-3' })
    const monitor = new Monitor(run)
    const events: unknown[] = []
    run.on('scratchpad:note', (event) => events.push(event))
    await run.result
    expect(events).toMatchObject([{ runId: 'pad-3', taskId: 'a', text: 'first note', at: expect.any(Number) }])
    expect(monitor.snapshot().runs[0]?.notes).toMatchObject([{ taskId: 'a', text: 'first note' }])
    monitor.close()
  })
})
