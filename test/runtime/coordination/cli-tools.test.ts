import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import type { Run } from '../../../src/runtime/run.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

// Stand-in: test/fixtures/bin/claude replays Claude Code's stream and, for `claim …` prompts,
// reads --mcp-config and calls the run tools with the official MCP SDK client.
const claude = join(import.meta.dirname, '..', '..', 'fixtures', 'bin', 'claude')

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({ config: { maxParallel: 4, pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 100, governor: { enabled: false }, checkpoint: { enabled: false } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

const plan = (id: string, prompt: string, task: Record<string, unknown> = {}): Plan =>
  ({ name: id, agents: { architect: { kind: 'claude-code', bin: claude } }, tasks: [{ id, agent: 'architect', retries: 0, input: { prompt }, ...task }] }) as Plan

/** The stand-in's `mcp <url> claim <answer>` line, once it is logged. */
function claimLine(run: Run): Promise<{ url: string; answer: { granted: boolean; holder?: string } }> {
  return new Promise((resolve) => {
    run.on('task:log', (event) => {
      const match = /^mcp (\S+) claim (.*)$/.exec(event.message)
      if (match) resolve({ url: match[1]!, answer: JSON.parse(match[2]!) as { granted: boolean; holder?: string } })
    })
  })
}

describe('run tools for CLI agents over MCP (stand-in claude)', () => {
  it('two agents claiming the same file: the first is granted, the second is told the holder', async () => {
    const first = runtime.run(plan('holder', 'claim src/api.ts then sleep 100s'))
    const held = await claimLine(first)
    expect(held.answer.granted).toBe(true)
    const second = runtime.run(plan('other', 'claim src/api.ts then sleep 0s'))
    const refused = await claimLine(second)
    expect(refused.answer).toMatchObject({ granted: false, holder: expect.stringContaining('holder') })
    expect((await second.result).tasks.other?.state).toBe('COMPLETED')
    await first.cancel('test done')
    await first.result
  })

  it('claims taken over MCP are released when the attempt is killed by its timeout, and its URL answers 404', async () => {
    const first = runtime.run(plan('slow', 'claim src/db.ts then sleep 100s', { timeoutMs: 4_000 }))
    const held = claimLine(first)
    const result = await first.result
    expect((await held).answer.granted).toBe(true)
    expect(result.tasks.slow?.state).not.toBe('COMPLETED')
    const third = runtime.run(plan('third', 'claim src/db.ts then sleep 0s'))
    const after = claimLine(third)
    expect((await third.result).tasks.third?.state).toBe('COMPLETED')
    expect((await after).answer.granted).toBe(true)
    const response = await fetch((await held).url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(response.status).toBe(404)
  })

  it('the MCP URL answers 404 after a successful attempt too', async () => {
    const run = runtime.run(plan('done', 'claim src/ui.ts then sleep 0s'))
    const line = claimLine(run)
    expect((await run.result).tasks.done?.state).toBe('COMPLETED')
    const response = await fetch((await line).url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(response.status).toBe(404)
  })
})
