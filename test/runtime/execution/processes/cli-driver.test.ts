import { describe, expect, it } from 'vitest'
import type { CliAgentSpec } from '../../../../src/runtime/plan/agent-spec.ts'
import { claudeCode } from '../../../../src/runtime/execution/processes/claude-code.ts'
import { codex } from '../../../../src/runtime/execution/processes/codex.ts'
import { gemini } from '../../../../src/runtime/execution/processes/gemini.ts'
import { CliDriver, callCost, oneLine, permissionOf, type CliParser } from '../../../../src/runtime/execution/processes/cli-driver.ts'
import type { UsageReport } from '../../../../src/runtime/admission/usage.ts'
import type { AttemptListener, AttemptRequest } from '../../../../src/runtime/execution/executor.ts'

describe('CLI driver error text', () => {
  it('puts a multi-line, coloured stderr tail on one line without control characters (regression: shown as �)', () => {
    const text = 'Agent "a" exited with code 1; stderr:\n\u001b[31mError:\u001b[0m boom\r\n  at x\n\n\u0007done'
    expect(oneLine(text)).toBe('Agent "a" exited with code 1; stderr: Error: boom | at x | done')
  })
})

describe('CLI call cost', () => {
  it('prices cached input at cachedInputUsdPerMTok, else at the input price', () => {
    const price = { inputUsdPerMTok: 3, outputUsdPerMTok: 15, cachedInputUsdPerMTok: 0.3 }
    expect(callCost(price, 1_000_000, 1_000_000, 1_000_000)).toBeCloseTo(18.3)
    expect(callCost({ inputUsdPerMTok: 3, outputUsdPerMTok: 15 }, 1_000_000, 1_000_000, 0)).toBeCloseTo(6)
  })
})

describe('CLI permissions', () => {
  const spec = (permissions?: 'read-only' | 'edit' | 'full') => ({ permissions }) as unknown as CliAgentSpec

  it('defaults to edit in a worktree and read-only outside one', () => {
    expect(permissionOf(spec(), '/repo/.troupe/r/worktrees/a')).toBe('edit')
    expect(permissionOf(spec(), undefined)).toBe('read-only')
    expect(permissionOf(spec('full'), undefined)).toBe('full')
  })

  it('maps each level to Claude Code\'s --permission-mode', () => {
    expect(['read-only', 'edit', 'full'].map((p) => claudeCode.permissionArgs(p as 'edit'))).toEqual([
      ['--permission-mode', 'dontAsk'],
      ['--permission-mode', 'acceptEdits'],
      ['--permission-mode', 'bypassPermissions'],
    ])
    const argv = claudeCode.argv('opus', ['--max-turns', '3'], 'edit')
    expect(argv).toEqual(['-p', '--output-format', 'stream-json', '--verbose', '--model', 'opus', '--permission-mode', 'acceptEdits', '--max-turns', '3'])
  })
})

describe('CLI resume flags (a repair continues the attempt\'s session)', () => {
  it('Claude Code: --resume <session id>', () => {
    const argv = claudeCode.argv(undefined, [], 'edit', 'abc-123')
    expect(argv).toEqual(['-p', '--output-format', 'stream-json', '--verbose', '--resume', 'abc-123', '--permission-mode', 'acceptEdits'])
  })

  it('Codex: `codex exec [options] resume <id> -`, the prompt still on stdin', () => {
    const argv = codex.argv('m', ['--x'], 'edit', 'th-1')
    expect(argv).toEqual(['exec', '--json', '--skip-git-repo-check', '-s', 'workspace-write', '-m', 'm', '--x', 'resume', 'th-1', '-'])
  })

  it('Gemini: --resume <session id>', () => {
    expect(gemini.argv(undefined, [], 'edit', 's-9')).toContain('--resume')
    const argv = gemini.argv(undefined, [], 'edit', 's-9')
    expect(argv[argv.indexOf('--resume') + 1]).toBe('s-9')
  })

  it('no resume flag without a session', () => {
    for (const parser of [claudeCode, codex, gemini]) expect(parser.argv(undefined, [], 'edit').join(' ')).not.toMatch(/resume/)
  })
})

/** A driver of `parser` for agent `a` (model `m-agent`), priced per model; `live` collects what is reported at once. */
function driverOf(parser: CliParser, kind: 'codex' | 'gemini' | 'claude-code', repair?: AttemptRequest['repair']) {
  const live: UsageReport[] = []
  const spec = { name: 'a', kind, model: 'm-agent', args: [], env: {}, executable: '/bin/true' } as unknown as CliAgentSpec
  const listener = { onUsage: (report: UsageReport) => live.push(report), onProgress: () => {} } as unknown as AttemptListener
  const request = { taskId: 't', input: { prompt: 'go' }, model: undefined, workspace: undefined, repair } as unknown as AttemptRequest
  const scope = { input: request.input, deps: new Map(), taskId: 't', runId: 'r', attempt: 1, workspace: undefined, port: undefined }
  const prices = {
    'm-agent': { inputUsdPerMTok: 1, outputUsdPerMTok: 4 },
    'm-router': { inputUsdPerMTok: 2, outputUsdPerMTok: 8, cachedInputUsdPerMTok: 1 },
  }
  const driver = new CliDriver(spec, { request, listener, scope, prices, log: () => {} }, parser)
  const feed = (...events: object[]) => events.forEach((event) => driver.onStdoutLine(JSON.stringify(event), 0))
  const finish = () => driver.finish({ exitCode: 0, signal: undefined, spawnError: undefined }, { stdout: '', stderr: '' })
  return { live, feed, finish }
}

describe('CLI final usage goes with the result (regression: a budget crossed by the final tally discarded the output)', () => {
  it('Codex: turn.completed tokens come with the result, not at once; the output counts them once', () => {
    const { live, feed, finish } = driverOf(codex, 'codex')
    feed(
      { type: 'item.started', item: { id: '1', type: 'command_execution', command: 'true' } },
      { type: 'item.completed', item: { id: '1', type: 'command_execution', command: 'true', exit_code: 0 } },
      { type: 'item.completed', item: { id: '2', type: 'agent_message', text: 'done' } },
      { type: 'turn.completed', usage: { input_tokens: 3000, cached_input_tokens: 1000, output_tokens: 500 } },
    )
    expect(live).toEqual([
      { costUsd: 0, tokens: 0, apiCalls: 1, model: 'm-agent' },
      { costUsd: 0, tokens: 0, apiCalls: 1, model: 'm-agent' },
    ])
    const result = finish()
    // 3000 input (1000 of them cached, no cached price: the input price) × $1/M + 500 × $4/M
    expect(result.usage).toEqual([{ costUsd: 0.005, tokens: 3500, apiCalls: 0, model: 'm-agent' }])
    const output = { text: 'done', turns: 2, usage: { inputTokens: 3000, outputTokens: 500, costUsd: 0.005 } }
    expect(result).toMatchObject({ ok: true, output })
  })

  it('Gemini: one report per model of stats.models, each priced and named by its model', () => {
    const { live, feed, finish } = driverOf(gemini, 'gemini')
    feed(
      { type: 'init', session_id: 's', model: 'm-agent' },
      { type: 'message', role: 'assistant', content: 'done', delta: true },
      {
        type: 'result',
        status: 'success',
        stats: {
          models: {
            'm-agent': { input: 2000, cached: 0, output_tokens: 100 },
            'm-router': { input_tokens: 1500, cached: 500, output_tokens: 10 },
          },
        },
      },
    )
    expect(live).toEqual([{ costUsd: 0, tokens: 0, apiCalls: 1, model: 'm-agent' }])
    const result = finish()
    expect(result.usage).toEqual([
      { costUsd: 0.0024, tokens: 2100, apiCalls: 0, model: 'm-agent' },
      // 1000 input × $2/M + 500 cached × $1/M + 10 × $8/M
      { costUsd: expect.closeTo(0.00258, 8), tokens: 1510, apiCalls: 0, model: 'm-router' },
    ])
    expect(result).toMatchObject({ ok: true, output: { text: 'done', turns: 1, usage: { inputTokens: 3500, outputTokens: 110 } } })
  })

  it('finalUsage called several times for one model adds up to one report for it', () => {
    const parser: CliParser = {
      argv: () => [],
      permissionArgs: () => [],
      onEvent(event, state, events) {
        if (event.type === 'part') events.finalUsage({ inputTokens: 1000, outputTokens: 100, model: String(event.model) })
        if (event.type === 'end') state.done = true
      },
    }
    const { live, feed, finish } = driverOf(parser, 'codex')
    feed({ type: 'part', model: 'm-agent' }, { type: 'part', model: 'm-router' }, { type: 'part', model: 'm-agent' }, { type: 'end' })
    expect(live).toEqual([])
    expect(finish().usage).toEqual([
      { costUsd: 0.0028, tokens: 2200, apiCalls: 0, model: 'm-agent' },
      { costUsd: 0.0028, tokens: 1100, apiCalls: 0, model: 'm-router' },
    ])
  })
})

describe('Codex totals of a resumed thread (a repair)', () => {
  const repair = (sessionTotals: { inputTokens: number; cachedInputTokens: number; outputTokens: number }) => ({
    number: 1,
    reason: 'check' as const,
    detail: 'broken',
    prompt: 'fix it',
    sessionId: 'th-1',
    sessionTotals,
  })
  const completed = (input: number, cached: number, output: number) => ({
    type: 'turn.completed',
    usage: { input_tokens: input, cached_input_tokens: cached, output_tokens: output },
  })

  it('the repair spends what the thread added since the session before; output.sessionTotals are the thread’s', () => {
    const { feed, finish } = driverOf(codex, 'codex', repair({ inputTokens: 1600, cachedInputTokens: 400, outputTokens: 20 }))
    feed({ type: 'thread.started', thread_id: 'th-1' }, completed(2200, 500, 22))
    const result = finish()
    // 200 more input (100 of them cached) and 2 more output tokens, at $1/M input and $4/M output
    expect(result.usage).toEqual([{ costUsd: 0.000208, tokens: 202, apiCalls: 0, model: 'm-agent' }])
    const sessionTotals = { inputTokens: 1700, cachedInputTokens: 500, outputTokens: 22 }
    const output = { usage: { inputTokens: 200, outputTokens: 2 }, sessionTotals }
    expect(result).toMatchObject({ ok: true, output })
  })

  it('totals below the session before’s (Codex did not carry them over) are the repair’s own', () => {
    const { feed, finish } = driverOf(codex, 'codex', repair({ inputTokens: 1600, cachedInputTokens: 400, outputTokens: 20 }))
    feed({ type: 'thread.started', thread_id: 'th-1' }, completed(200, 0, 2))
    expect(finish().usage).toEqual([{ costUsd: 0.000208, tokens: 202, apiCalls: 0, model: 'm-agent' }])
  })
})

describe('Claude Code cost of a resumed session (a repair)', () => {
  const sessionTotals = { costUsd: 0.05 }
  const repair = { number: 1, reason: 'verify' as const, detail: 'broken', prompt: 'fix', sessionId: 's-1', sessionTotals }
  const result = (totalCostUsd: number) => ({
    type: 'result',
    subtype: 'success',
    session_id: 's-1',
    result: 'fixed',
    total_cost_usd: totalCostUsd,
    usage: { input_tokens: 0, output_tokens: 0 },
  })

  it('total_cost_usd less the session before’s is the repair’s spend; output.sessionTotals keep Claude’s total', () => {
    const { live, feed, finish } = driverOf(claudeCode, 'claude-code', repair)
    feed(result(0.0502))
    const ended = finish()
    expect(live).toEqual([])
    expect(ended.usage).toEqual([{ costUsd: expect.closeTo(0.0002, 10), tokens: 0, apiCalls: 0, model: 'm-agent' }])
    expect(ended).toMatchObject({ ok: true, output: { sessionTotals: { costUsd: 0.0502 } } })
  })

  it('a total below the session before’s (not carried over) is the repair’s own', () => {
    const { feed, finish } = driverOf(claudeCode, 'claude-code', repair)
    feed(result(0.0003))
    expect(finish().usage).toEqual([{ costUsd: 0.0003, tokens: 0, apiCalls: 0, model: 'm-agent' }])
  })
})
