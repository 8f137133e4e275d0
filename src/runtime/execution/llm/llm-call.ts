import type { LlmAgentSpec } from '../../plan/agent-spec.ts'

/**
 * One chat call to an LLM provider, as the {@link LlmExecutor} hands it to a provider
 * adapter (`openai.ts`, `anthropic.ts`). The adapter streams; it does no pricing, logging
 * or error mapping (an SDK error is rethrown as is and mapped by `llm-errors.ts`).
 */
export interface LlmCall {
  readonly agent: LlmAgentSpec
  /** Read from `process.env[agent.apiKeyEnv]` for this attempt only; never stored. */
  readonly apiKey: string
  /** The task's rendered `input.prompt`. */
  readonly prompt: string
  /** The agent's `system`, plus the JSON instruction for `output: json`. */
  readonly system: string | undefined
  /** Ask the provider for one JSON object (where its API has a switch for it). */
  readonly json: boolean
  /** The SDK's own request timeout (the run enforces the attempt's deadline too). */
  readonly timeoutMs: number
  /** Aborting it cancels the HTTP request. */
  readonly signal: AbortSignal
  /** Each piece of streamed text, as it arrives. */
  readonly onDelta: (text: string) => void
}

/** What a finished call returned. */
export interface LlmReply {
  readonly text: string
  /** The model that answered (the provider's name for it), else the one asked for. */
  readonly model: string
  readonly inputTokens: number
  readonly outputTokens: number
}

/** Streams one call through a provider's official SDK. */
export type LlmProvider = (call: LlmCall) => Promise<LlmReply>
