import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'

// The CLIs need accounts: these tests run the stand-ins in test/fixtures/bin, which replay each CLI's documented stream.
const bin = (name: string) => join(import.meta.dirname, '..', '..', '..', 'fixtures', 'bin', name)

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({
    config: {
      maxParallel: 4,
      pool: { minThreads: 1, maxThreads: 2 },
      cancelGraceMs: 100,
      governor: { enabled: false },
      checkpoint: { enabled: false },
      models: { coder: { model: 'gpt-stand-in', inputUsdPerMTok: 2, outputUsdPerMTok: 8 }, reviewer: { model: 'gemini-stand-in', inputUsdPerMTok: 1, outputUsdPerMTok: 4 } },
    },
  })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

const cli = (kind: string, prompt: string, agent: Record<string, unknown> = {}, task: Record<string, unknown> = {}): Plan =>
  ({ name: kind, agents: { [agentName(kind)]: { kind, bin: bin(kind === 'claude-code' ? 'claude' : kind), ...agent } }, tasks: [{ id: 't', agent: agentName(kind), retries: 0, input: { prompt }, ...task }] }) as Plan
const agentName = (kind: string) => (kind === 'codex' ? 'coder' : kind === 'gemini' ? 'reviewer' : 'architect')

describe('claude-code agents (stand-in)', () => {
  it('returns the result text, session id, usage and turns', async () => {
    const run = runtime.run(cli('claude-code', 'success {{task.id}}'))
    const logs: string[] = []
    run.on('task:log', (e) => logs.push(e.message))
    const result = await run.result
    expect(result.tasks.t?.output).toMatchObject({ text: 'done: success t', sessionId: expect.stringMatching(/^stand-in-session-/), usage: { inputTokens: 120, outputTokens: 30, costUsd: 0.0123 }, turns: 2 })
    expect(result.usage?.total.costUsd).toBeCloseTo(0.0123)
    expect(logs).toContain('tool Bash {"command":"ls"}')
  })

  it('passes the model and extra args on the command line', async () => {
    const result = await runtime.run(cli('claude-code', 'success', { model: 'opus', args: ['--max-turns', '3'] })).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
  })

  it('fails with ERR_TASK_FAILED and the message of an error result', async () => {
    const result = await runtime.run(cli('claude-code', 'error')).result
    expect(result.tasks.t?.error).toMatchObject({ code: 'ERR_TASK_FAILED', message: expect.stringContaining('error_max_turns: Reached the maximum number of turns') })
  })

  it('a rejected rate_limit_event re-queues the attempt uncounted until the rate-limit retries run out', async () => {
    const own = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false }, retry: { rateLimitRetries: 0 } } })
    try {
      const result = await own.run(cli('claude-code', 'rate-limit')).result
      expect(result.tasks.t?.error?.code).toBe('ERR_RATE_LIMITED')
    } finally {
      await own.close({ force: true })
    }
  })

  it('reassembles an event split across writes', async () => {
    const result = await runtime.run(cli('claude-code', 'split')).result
    expect(result.tasks.t?.output).toMatchObject({ text: 'split ok', usage: { costUsd: 0.5 } })
  })

  it('parses an event line over 1 MB and bounds the log line', async () => {
    const run = runtime.run(cli('claude-code', 'huge'))
    let longest = 0
    run.on('task:log', (e) => (longest = Math.max(longest, e.message.length)))
    const result = await run.result
    expect((result.tasks.t?.output as { text: string }).text).toHaveLength('huge ok '.length + 1024 * 1024 + 10)
    expect(longest).toBeLessThan(5000)
  })

  it('logs non-JSON noise instead of failing', async () => {
    const run = runtime.run(cli('claude-code', 'noise'))
    const logs: string[] = []
    run.on('task:log', (e) => logs.push(e.message))
    const result = await run.result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(logs).toEqual(expect.arrayContaining(['Warning: this is not JSON', '[1, 2, 3]']))
  })

  it('a session stopped after its final result still counts the spend that came with it (regression: $0 counted)', async () => {
    const run = runtime.run(cli('claude-code', 'linger'))
    let lingering: () => void = () => {}
    const seen = new Promise<void>((resolve) => (lingering = resolve))
    run.on('task:log', (e) => e.message === 'lingering' && lingering())
    // Stdout lines are read in order: once `lingering` is logged, the result event before it was read.
    await seen
    await run.cancel('test done')
    const result = await run.result
    expect(result.tasks.t?.state).toBe('CANCELLED')
    // The stand-in's streamed calls are unpriced here; its total_cost_usd comes with the result.
    expect(result.usage?.total.costUsd).toBeCloseTo(0.0123, 6)
  })

  it('fails with ERR_COMMAND_FAILED when the CLI exits non-zero without a result', async () => {
    const result = await runtime.run(cli('claude-code', 'crash')).result
    const message = 'Agent "architect" exited with code 3; stderr: stand-in: segfault-like crash'
    expect(result.tasks.t?.error).toMatchObject({ code: 'ERR_COMMAND_FAILED', message })
  })

})

// Codex and Gemini run as the real CLIs against scripted model servers: test/runtime/execution/real-cli/.
