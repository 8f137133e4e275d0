import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LlmExecutor } from '../../../../src/runtime/execution/llm/llm-executor.ts'
import type { LlmKind } from '../../../../src/runtime/plan/agent-spec.ts'
import { startAnthropicStandIn } from '../../../fixtures/standins/anthropic-server.ts'
import { startOpenAiStandIn, type StandIn, type StandInScript } from '../../../fixtures/standins/openai-server.ts'
import { SECRET, attemptRequest, env, llmAgent, recordingListener } from './llm-test-kit.ts'

// Real SDKs (openai, @anthropic-ai/sdk) against local stand-in servers (no paid API).
const starters: Record<LlmKind, (script: StandInScript) => Promise<StandIn>> = { openai: startOpenAiStandIn, anthropic: startAnthropicStandIn }

let standIn: StandIn | undefined
afterEach(async () => {
  await standIn?.close()
  standIn = undefined
})

async function serve(kind: LlmKind, script: StandInScript): Promise<StandIn> {
  standIn = await starters[kind](script)
  return standIn
}

describe.each(['openai', 'anthropic'] as const)('LlmExecutor, kind %s', (kind) => {
  it('streams the answer into the output text, with the model and token usage', async () => {
    const server = await serve(kind, () => ({ text: 'Hello there, team.', inputTokens: 12, outputTokens: 5 }))
    const executor = new LlmExecutor({ prices: {}, env })
    const result = await executor.start(attemptRequest(llmAgent(kind, server.url)), recordingListener().listener).result
    expect(result).toEqual({
      ok: true,
      output: { text: 'Hello there, team.', model: llmAgent(kind, '').model, usage: { inputTokens: 12, outputTokens: 5, tokens: 17, costUsd: 0 } },
    })
  })

  it('reports tokens, cost from config.prices, one API call and the model through onUsage', async () => {
    const server = await serve(kind, () => ({ text: 'ok', inputTokens: 1_000_000, outputTokens: 200_000 }))
    const executor = new LlmExecutor({ prices: { writer: { inputUsdPerMTok: 2, outputUsdPerMTok: 10 } }, env })
    const { listener, seen } = recordingListener()
    await executor.start(attemptRequest(llmAgent(kind, server.url)), listener).result
    expect(seen.usage).toEqual([{ tokens: 1_200_000, costUsd: 4, apiCalls: 1, model: llmAgent(kind, '').model }])
  })

  it('prices by model name when the agent has no price of its own', async () => {
    const server = await serve(kind, () => ({ text: 'ok', inputTokens: 500_000, outputTokens: 0 }))
    const executor = new LlmExecutor({ prices: { [llmAgent(kind, '').model]: { inputUsdPerMTok: 1, outputUsdPerMTok: 1 } }, env })
    const { listener, seen } = recordingListener()
    await executor.start(attemptRequest(llmAgent(kind, server.url)), listener).result
    expect(seen.usage[0]?.costUsd).toBe(0.5)
  })

  it('sends the rendered prompt, the system prompt, maxTokens and temperature', async () => {
    const server = await serve(kind, () => ({ text: 'ok' }))
    const agent = llmAgent(kind, server.url, { system: 'Be brief.', maxTokens: 64, temperature: 0.5 })
    const request = attemptRequest(agent, { prompt: 'Merge: {{deps.a.output.text}} / {{input.topic}}', topic: 'auth' }, { dependencies: { a: { text: 'summary A' } } })
    await new LlmExecutor({ prices: {}, env }).start(request, recordingListener().listener).result
    const body = server.requests[0]!.body
    expect(body.temperature).toBe(0.5)
    if (kind === 'openai') {
      expect(body.messages).toEqual([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Merge: summary A / auth' },
      ])
      expect([body.max_tokens, body.stream, body.stream_options]).toEqual([64, true, { include_usage: true }])
    } else {
      expect([body.system, body.messages, body.max_tokens, body.stream]).toEqual(['Be brief.', [{ role: 'user', content: 'Merge: summary A / auth' }], 64, true])
    }
  })

  it('passes the key from the environment variable to the provider', async () => {
    const server = await serve(kind, () => ({ text: 'ok' }))
    await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url)), recordingListener().listener).result
    const headers = server.requests[0]!.headers
    // OpenAI sends a bearer token; Anthropic's SDK sends x-api-key (1.x: a bearer token as well).
    expect([headers.authorization, headers['x-api-key']]).toContainEqual(kind === 'openai' || headers['x-api-key'] === undefined ? `Bearer ${SECRET}` : SECRET)
  })

  it('logs each line of the streamed answer and reports progress in tokens', async () => {
    const server = await serve(kind, () => ({ text: 'line one\nline two\nthree', chunks: 6 }))
    const { listener, seen } = recordingListener()
    await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url)), listener).result
    expect(seen.logs).toEqual(['line one', 'line two', 'three'])
    expect(seen.progress.at(-1)).toEqual([0, '6 tokens'])
  })

  it('parses the answer as JSON with output: json (code fence allowed)', async () => {
    const server = await serve(kind, () => ({ text: '```json\n{"ok": true, "n": 2}\n```' }))
    const result = await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url, { output: 'json' })), recordingListener().listener).result
    expect(result.ok && (result.output as { json: unknown }).json).toEqual({ ok: true, n: 2 })
    if (kind === 'openai') expect(server.requests[0]!.body.response_format).toEqual({ type: 'json_object' })
    else expect(server.requests[0]!.body.system).toMatch(/JSON object/)
  })

  it('fails the attempt (retryable) when output: json gets text that is not JSON', async () => {
    const server = await serve(kind, () => ({ text: 'Sure! Here it is' }))
    const result = await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url, { output: 'json' })), recordingListener().listener).result
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect([result.error.code, result.error.retryable]).toEqual(['ERR_TASK_FAILED', true])
      expect(result.error.message).toContain('not JSON')
    }
  })

  it('turns a 429 with retry-after into rateLimitedUntil, without retrying inside the SDK', async () => {
    const server = await serve(kind, () => ({ status: 429, headers: { 'retry-after': '3' } }))
    const now = () => 1_000_000
    const result = await new LlmExecutor({ prices: {}, env, now }).start(attemptRequest(llmAgent(kind, server.url)), recordingListener().listener).result
    expect(result.ok ? undefined : result.error.rateLimitedUntil).toBe(1_003_000)
    expect(server.requests).toHaveLength(1)
  })

  it('fails a 5xx as retryable ERR_TASK_FAILED naming the status', async () => {
    const server = await serve(kind, () => ({ status: 503 }))
    const result = await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url)), recordingListener().listener).result
    expect(result.ok ? undefined : [result.error.code, result.error.retryable, result.error.message.includes('HTTP 503')]).toEqual(['ERR_TASK_FAILED', true, true])
    expect(server.requests).toHaveLength(1)
  })

  it('fails a 401 as not retryable, naming the key variable but not the key', async () => {
    const server = await serve(kind, () => ({ status: 401, body: { error: { message: `Incorrect API key provided: ${SECRET}`, type: 'authentication_error' } } }))
    const result = await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url)), recordingListener().listener).result
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect([result.error.code, result.error.retryable]).toEqual(['ERR_TASK_FAILED', false])
      expect(result.error.message).toContain('STANDIN_KEY')
      expect(JSON.stringify(result)).not.toContain(SECRET)
    }
  })

  it('fails a network error as retryable', async () => {
    const server = await serve(kind, () => ({ text: 'never' }))
    await server.close()
    const result = await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url)), recordingListener().listener).result
    expect(result.ok ? undefined : [result.error.code, result.error.retryable]).toEqual(['ERR_TASK_FAILED', true])
  })

  it('abort() cancels the HTTP request mid-stream', async () => {
    const server = await serve(kind, () => ({ text: 'a b c d e f g h i j', delayMs: 1000 }))
    const { listener, seen } = recordingListener()
    const handle = new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url)), listener)
    while (server.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    handle.abort()
    const result = await handle.result
    await server.hungUp()
    expect([result.ok ? undefined : result.error.code, server.hangUps]).toEqual(['ERR_CANCELLED', 1])
    expect(seen.usage).toEqual([])
  })

  it('writes the streamed answer to the attempt log, without the key', async () => {
    const server = await serve(kind, () => ({ status: 400, body: { error: { message: `bad request with key ${SECRET}` } } }))
    const runDir = mkdtempSync(join(tmpdir(), 'troupe-llm-'))
    try {
      await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent(kind, server.url), undefined, { runDir }), recordingListener().listener).result
      const log = readFileSync(join(runDir, 'logs', 't1', '1.output.log'), 'utf8')
      expect(log).toContain('HTTP 400')
      expect(log).not.toContain(SECRET)
    } finally {
      rmSync(runDir, { recursive: true, force: true })
    }
  })
})

describe('LlmExecutor', () => {
  it('keeps the log of a rate-limited attempt when its uncounted retry runs under the same number', async () => {
    const server = await serve('openai', (r) => (r.index === 0 ? { status: 429, headers: { 'retry-after-ms': '1' } } : { text: 'fine' }))
    const runDir = mkdtempSync(join(tmpdir(), 'troupe-llm-'))
    try {
      const executor = new LlmExecutor({ prices: {}, env })
      for (let i = 0; i < 2; i++) await executor.start(attemptRequest(llmAgent('openai', server.url), undefined, { runDir }), recordingListener().listener).result
      const log = readFileSync(join(runDir, 'logs', 't1', '1.output.log'), 'utf8')
      expect([log.includes('HTTP 429'), log.includes('fine\n[troupe] completed')]).toEqual([true, true])
    } finally {
      rmSync(runDir, { recursive: true, force: true })
    }
  })

  it('fails with ERR_AGENT_UNAVAILABLE when the key variable is unset at attempt time', async () => {
    const result = await new LlmExecutor({ prices: {}, env: () => undefined }).start(attemptRequest(llmAgent('openai', 'http://127.0.0.1:9/v1')), recordingListener().listener).result
    expect(result.ok ? undefined : [result.error.code, result.error.retryable]).toEqual(['ERR_AGENT_UNAVAILABLE', false])
  })

  it('uses max_completion_tokens against OpenAI itself (no baseUrl) and max_tokens elsewhere', async () => {
    const server = await serve('openai', () => ({ text: 'ok' }))
    await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent('openai', server.url, { maxTokens: 9 })), recordingListener().listener).result
    expect([server.requests[0]!.body.max_tokens, server.requests[0]!.body.max_completion_tokens]).toEqual([9, undefined])
  })

  it('fails insufficient_quota (a 429 no wait fixes) as not retryable and not rate-limited', async () => {
    const server = await serve('openai', () => ({ status: 429, body: { error: { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' } } }))
    const result = await new LlmExecutor({ prices: {}, env }).start(attemptRequest(llmAgent('openai', server.url)), recordingListener().listener).result
    expect(result.ok ? undefined : [result.error.retryable, result.error.rateLimitedUntil]).toEqual([false, undefined])
  })

  it('close(true) aborts attempts in flight', async () => {
    const server = await serve('openai', () => ({ text: 'a b c d e f', delayMs: 1000 }))
    const executor = new LlmExecutor({ prices: {}, env })
    const handle = executor.start(attemptRequest(llmAgent('openai', server.url)), recordingListener().listener)
    while (server.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    await executor.close(true)
    expect((await handle.result).ok).toBe(false)
  })
})
