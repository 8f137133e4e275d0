import { appendFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { ModelPrice } from '../../core/config.ts'
import { attemptOutputFile } from '../../journal/paths.ts'
import type { LlmAgentSpec, LlmKind } from '../../plan/agent-spec.ts'
import { renderString } from '../../plan/templates.ts'
import { templateScopeOf, type AttemptError, type AttemptHandle, type AttemptListener, type AttemptRequest, type AttemptResult, type Executor } from '../executor.ts'
import type { LlmProvider, LlmReply } from './llm-call.ts'
import { attemptErrorOf, scrubber } from './llm-errors.ts'
import { StreamReporter } from './stream-reporter.ts'

export interface LlmExecutorOptions {
  /** Token prices by agent name and by model name (`config.prices`). */
  readonly prices: Readonly<Record<string, ModelPrice>>
  /** Epoch ms, for rate-limit reset times and progress pacing. @default Date.now */
  readonly now?: () => number
  /** Where API keys are read, at attempt time. @default `process.env` */
  readonly env?: (name: string) => string | undefined
}

/** Spend of one call, as in the output's `usage`. */
export interface LlmUsage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly tokens: number
  readonly costUsd: number
}

/** The output of an `openai` or `anthropic` attempt. */
export interface LlmOutput {
  readonly text: string
  /** With `output: json`: the parsed answer. */
  readonly json?: unknown
  readonly model: string
  readonly usage: LlmUsage
}

/** The SDK's own timeout when the attempt has none. */
const FALLBACK_TIMEOUT_MS = 10 * 60_000

const JSON_INSTRUCTION = 'Respond with a single JSON object only: no prose, no code fences.'

/**
 * Loaded on first use: the two SDKs take a few hundred ms to import, which a runtime (or a
 * CLI run) without LLM agents should not pay.
 */
const PROVIDERS: Readonly<Record<LlmKind, () => Promise<LlmProvider>>> = {
  openai: () => import('./openai.ts').then((m) => m.callOpenAi),
  anthropic: () => import('./anthropic.ts').then((m) => m.callAnthropic),
}

/**
 * Runs `openai` and `anthropic` agents: one streamed chat call per attempt, in this
 * process (the work is waiting on HTTP, not CPU). The prompt is the task's rendered
 * `input.prompt`; the API key is read from the environment at attempt time and never
 * leaves this call (messages are scrubbed of it). A 429 fails the attempt with
 * `rateLimitedUntil`, so the run pauses the task's limits for the whole team.
 */
export class LlmExecutor implements Executor {
  readonly name = 'local'
  readonly #prices: Readonly<Record<string, ModelPrice>>
  readonly #now: () => number
  readonly #env: (name: string) => string | undefined
  readonly #inFlight = new Set<{ readonly result: Promise<AttemptResult>; readonly controller: AbortController }>()

  constructor(options: LlmExecutorOptions) {
    this.#prices = options.prices
    this.#now = options.now ?? Date.now
    this.#env = options.env ?? ((name) => process.env[name])
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const controller = new AbortController()
    const entry = { result: this.#attempt(request, listener, controller.signal), controller }
    this.#inFlight.add(entry)
    void entry.result.then(() => this.#inFlight.delete(entry))
    return { result: entry.result, abort: () => controller.abort() }
  }

  async close(force = false): Promise<void> {
    const entries = [...this.#inFlight]
    if (force) for (const entry of entries) entry.controller.abort()
    await Promise.all(entries.map((entry) => entry.result))
  }

  async #attempt(request: AttemptRequest, listener: AttemptListener, signal: AbortSignal): Promise<AttemptResult> {
    const agent = request.agent
    if (agent.kind !== 'openai' && agent.kind !== 'anthropic') {
      return failed({ code: 'ERR_AGENT_UNAVAILABLE', message: `The LLM executor cannot run agent "${agent.name}" of kind "${agent.kind}"`, retryable: false })
    }
    const apiKey = this.#env(agent.apiKeyEnv)
    if (apiKey === undefined || apiKey === '') {
      return failed({
        code: 'ERR_AGENT_UNAVAILABLE',
        message: `Agent "${agent.name}" (kind ${agent.kind}) reads its API key from the environment variable ${agent.apiKeyEnv}, which is not set; export it before running`,
        retryable: false,
      })
    }
    const prompt = renderPrompt(request)
    if (typeof prompt !== 'string') return failed(prompt)
    const reporter = new StreamReporter(listener, this.#now, agent.maxTokens)
    let result: AttemptResult
    try {
      const provider = await PROVIDERS[agent.kind]()
      const reply = await provider({
        agent,
        apiKey,
        prompt,
        system: systemPrompt(agent),
        json: agent.output === 'json',
        timeoutMs: Number.isFinite(request.timeoutMs) && request.timeoutMs > 0 ? request.timeoutMs : FALLBACK_TIMEOUT_MS,
        signal,
        onDelta: (text) => reporter.delta(text),
      })
      reporter.end()
      // The SDKs end a stream quietly when it is aborted: an answer cut short is not a result.
      if (signal.aborted) throw signal.reason
      result = this.#finish(agent, reply, listener)
    } catch (error) {
      reporter.end()
      result = failed(attemptErrorOf(error, { agent, apiKey, aborted: signal.aborted, now: this.#now() }))
    }
    await writeAttemptLog(request, reporter.lines, result, scrubber(apiKey))
    return result
  }

  /** Reports the spend (also when the answer then fails to parse: the tokens were paid for). */
  #finish(agent: LlmAgentSpec, reply: LlmReply, listener: AttemptListener): AttemptResult {
    const price = this.#prices[agent.name] ?? this.#prices[agent.model] ?? this.#prices[reply.model]
    const costUsd = price === undefined ? 0 : (reply.inputTokens * price.inputUsdPerMTok + reply.outputTokens * price.outputUsdPerMTok) / 1e6
    const usage: LlmUsage = { inputTokens: reply.inputTokens, outputTokens: reply.outputTokens, tokens: reply.inputTokens + reply.outputTokens, costUsd }
    listener.onUsage({ tokens: usage.tokens, costUsd, apiCalls: 1, model: agent.model })
    if (agent.output !== 'json') return { ok: true, output: { text: reply.text, model: reply.model, usage } satisfies LlmOutput }
    const json = parseJsonAnswer(reply.text)
    if (json.ok) return { ok: true, output: { text: reply.text, json: json.value, model: reply.model, usage } satisfies LlmOutput }
    return failed({
      code: 'ERR_TASK_FAILED',
      message: `Agent "${agent.name}" (kind ${agent.kind}, output: json) answered with text that is not JSON (${json.reason}): ${JSON.stringify(reply.text.slice(0, 200))}${reply.text.length > 200 ? '…' : ''}`,
      retryable: true,
    })
  }
}

function failed(error: AttemptError): AttemptResult {
  return { ok: false, error }
}

function systemPrompt(agent: LlmAgentSpec): string | undefined {
  if (agent.output !== 'json') return agent.system
  return agent.system === undefined ? JSON_INSTRUCTION : `${agent.system}\n\n${JSON_INSTRUCTION}`
}

/** The task's `input.prompt`, rendered against its dependencies' outputs; or why it cannot be. */
function renderPrompt(request: AttemptRequest): string | AttemptError {
  const template = (request.input as { prompt?: unknown } | null | undefined)?.prompt
  if (typeof template !== 'string' || template.length === 0) {
    return { code: 'ERR_TASK_FAILED', message: `Task "${request.taskId}" has no \`input.prompt\` string for agent "${request.agent.name}" (kind ${request.agent.kind})`, retryable: false }
  }
  try {
    return renderString(
      template,
      templateScopeOf(request),
      `tasks.${request.taskId}.input.prompt`,
    )
  } catch (error) {
    return { code: 'ERR_TASK_FAILED', message: `Task "${request.taskId}": cannot render \`input.prompt\`: ${(error as Error).message}`, retryable: false }
  }
}

/** A JSON answer, allowing the code fence many models put around it anyway. */
export function parseJsonAnswer(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  const fenced = /^\s*```(?:json)?\s*\n?([\s\S]*?)\n?\s*```\s*$/i.exec(text)
  try {
    return { ok: true, value: JSON.parse(fenced?.[1] ?? text) }
  } catch (error) {
    return { ok: false, reason: (error as Error).message }
  }
}

/**
 * `.troupe/<runId>/logs/<taskId>/<attempt>.output.log`: the streamed answer and how the attempt
 * ended. Appended: a rate-limited attempt is not counted, so its retry has the same number.
 */
async function writeAttemptLog(request: AttemptRequest, lines: readonly string[], result: AttemptResult, scrub: (text: string) => string): Promise<void> {
  if (request.runDir === undefined) return
  const file = attemptOutputFile(request.runDir, request.taskId, request.attempt)
  const end = result.ok ? '[troupe] completed' : `[troupe] ${result.error.code}: ${result.error.message}`
  try {
    await mkdir(dirname(file), { recursive: true })
    await appendFile(file, scrub([...lines, end].join('\n') + '\n'))
  } catch {
    // A log that cannot be written does not fail the attempt; its output is in the result.
  }
}
