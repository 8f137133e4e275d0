import Anthropic from '@anthropic-ai/sdk'
import type { MessageCreateParamsStreaming } from '@anthropic-ai/sdk/resources/messages/messages'
import type { LlmCall, LlmReply } from './llm-call.ts'

/** The Messages API requires `max_tokens`; this is used when the agent sets none. */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 4096

/**
 * `kind: anthropic`: the Messages API through the official `@anthropic-ai/sdk`, streamed
 * (`message_start` → `content_block_delta`… → `message_delta` with usage → `message_stop`).
 * The SDK's own retries are off, as for OpenAI.
 */
export async function callAnthropic(call: LlmCall): Promise<LlmReply> {
  const { agent } = call
  const client = new Anthropic({
    apiKey: call.apiKey,
    ...(agent.baseUrl !== undefined ? { baseURL: agent.baseUrl } : {}),
    maxRetries: 0,
    timeout: call.timeoutMs,
    logLevel: 'off',
  })
  const params: MessageCreateParamsStreaming = {
    model: agent.model,
    max_tokens: agent.maxTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS,
    messages: [{ role: 'user', content: call.prompt }],
    stream: true,
    ...(call.system !== undefined ? { system: call.system } : {}),
    ...(agent.temperature !== undefined ? { temperature: agent.temperature } : {}),
  }
  const stream = await client.messages.create(params, { signal: call.signal })
  let text = ''
  let model = agent.model
  let inputTokens = 0
  let outputTokens = 0
  for await (const event of stream) {
    switch (event.type) {
      case 'message_start':
        model = event.message.model || model
        inputTokens = event.message.usage.input_tokens ?? 0
        outputTokens = event.message.usage.output_tokens ?? 0
        break
      case 'content_block_delta':
        if (event.delta.type === 'text_delta' && event.delta.text.length > 0) {
          text += event.delta.text
          call.onDelta(event.delta.text)
        }
        break
      case 'message_delta':
        // Counts in message_delta are cumulative.
        if (typeof event.usage.input_tokens === 'number') inputTokens = event.usage.input_tokens
        if (typeof event.usage.output_tokens === 'number') outputTokens = event.usage.output_tokens
        break
      default:
        break
    }
  }
  return { text, model, inputTokens, outputTokens }
}
