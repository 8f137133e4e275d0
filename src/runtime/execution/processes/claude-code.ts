import { num, obj, preview, type CliParser } from './cli-driver.ts'

/**
 * Claude Code headless: `claude -p --output-format stream-json --verbose`.
 * Events (one JSON object per line): `system/init` (session_id), `assistant` (message with
 * `text` and `tool_use` content blocks), `user` (tool results), `rate_limit_event`
 * (`rate_limit_info.status` allowed | allowed_warning | rejected, `resetsAt` in epoch
 * seconds), and a final `result` (`subtype` success | error_*, `is_error`, `result` text,
 * `num_turns`, `total_cost_usd`, `usage`).
 */
export const claudeCode: CliParser = {
  argv(model, extra) {
    // `-p` without a prompt argument reads the prompt from stdin.
    return ['-p', '--output-format', 'stream-json', '--verbose', ...(model === undefined ? [] : ['--model', model]), ...extra]
  },
  permissionArgs() {
    return []
  },
  onEvent(event, state, events) {
    if (typeof event.session_id === 'string') state.sessionId = event.session_id
    switch (event.type) {
      case 'assistant': {
        const content = obj(event.message).content
        let tools = 0
        for (const block of Array.isArray(content) ? content : []) {
          const b = obj(block)
          if (b.type === 'text' && typeof b.text === 'string') events.log(b.text.length > 0 ? preview(b.text, 2000) : '')
          else if (b.type === 'tool_use') {
            tools++
            events.log(`tool ${String(b.name)} ${preview(b.input)}`)
          }
        }
        if (tools > 0) events.turn(`tool calls: ${tools}`)
        return
      }
      case 'rate_limit_event': {
        const info = obj(event.rate_limit_info)
        if (info.status === 'rejected') {
          const resetsAt = num(info.resetsAt)
          state.rateLimitedUntil = resetsAt > 0 ? resetsAt * 1000 : Date.now() + 60_000
          events.log(`rate limit reached (${String(info.rateLimitType ?? 'unknown window')}), resets ${new Date(state.rateLimitedUntil).toISOString()}`)
        }
        return
      }
      case 'result': {
        state.done = true
        if (typeof event.result === 'string') state.text = event.result
        const usage = obj(event.usage)
        const input = num(usage.input_tokens) + num(usage.cache_creation_input_tokens) + num(usage.cache_read_input_tokens)
        events.usage(input, num(usage.output_tokens), typeof event.total_cost_usd === 'number' ? num(event.total_cost_usd) : undefined)
        state.turns = Math.max(state.turns, num(event.num_turns))
        if (event.is_error === true || (typeof event.subtype === 'string' && event.subtype !== 'success')) {
          state.error = `${String(event.subtype ?? 'error')}${typeof event.result === 'string' && event.result.length > 0 ? `: ${preview(event.result, 1000)}` : ''}`
        }
        return
      }
      default:
        return
    }
  },
}
