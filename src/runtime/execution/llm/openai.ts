import OpenAI from 'openai'
import type { ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import type { LlmCall, LlmReply } from './llm-call.ts'

/**
 * `kind: openai`: the Chat Completions API of any OpenAI-compatible endpoint (OpenAI,
 * vLLM, Ollama, llama.cpp) through the official `openai` SDK, streamed, with the usage
 * chunk at the end (`stream_options.include_usage`). The SDK's own retries are off: a 429
 * must pause the team's shared limit once, not be retried by every attempt on its own.
 */
export async function callOpenAi(call: LlmCall): Promise<LlmReply> {
  const { agent } = call
  const client = new OpenAI({
    apiKey: call.apiKey,
    // An explicit null-ish baseURL would fall back to OPENAI_BASE_URL; the agent's own value wins.
    ...(agent.baseUrl !== undefined ? { baseURL: agent.baseUrl } : {}),
    maxRetries: 0,
    timeout: call.timeoutMs,
    logLevel: 'off',
  })
  const messages: ChatCompletionMessageParam[] = []
  if (call.system !== undefined) messages.push({ role: 'system', content: call.system })
  messages.push({ role: 'user', content: call.prompt })
  const params: ChatCompletionCreateParamsStreaming = {
    model: agent.model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    ...(agent.temperature !== undefined ? { temperature: agent.temperature } : {}),
    ...(call.json ? { response_format: { type: 'json_object' } } : {}),
  }
  // OpenAI itself deprecated max_tokens (its reasoning models refuse it); compatible servers
  // (Ollama, llama.cpp, older vLLM) know only max_tokens.
  if (agent.maxTokens !== undefined) {
    if (agent.baseUrl === undefined) params.max_completion_tokens = agent.maxTokens
    else params.max_tokens = agent.maxTokens
  }
  const stream = await client.chat.completions.create(params, { signal: call.signal })
  let text = ''
  let model = agent.model
  let inputTokens = 0
  let outputTokens = 0
  for await (const chunk of stream) {
    if (chunk.model) model = chunk.model
    const delta = chunk.choices?.[0]?.delta?.content
    if (typeof delta === 'string' && delta.length > 0) {
      text += delta
      call.onDelta(delta)
    }
    if (chunk.usage) {
      inputTokens = chunk.usage.prompt_tokens ?? 0
      outputTokens = chunk.usage.completion_tokens ?? 0
    }
  }
  return { text, model, inputTokens, outputTokens }
}
