import { DEFAULT_RATE_LIMIT_PAUSE_MS, num, obj, preview, type CliParser } from './cli-driver.ts'

const RATE_LIMITED = /rate.?limit|429|too many requests|usage limit/i

/**
 * Codex headless: `codex exec --json [-m M] [args] <prompt>`. Events: `thread.started`
 * (`thread_id`), `turn.started`, `item.started` / `item.updated` / `item.completed` (items:
 * `agent_message` with `text`, `reasoning`, `command_execution` with `command`,
 * `file_change`, `mcp_tool_call`, `web_search`, `todo_list`), `turn.completed` (`usage`:
 * `input_tokens`, `cached_input_tokens`, `output_tokens`), `turn.failed` (`error.message`),
 * `error` (`message`). Codex reports tokens, not cost: cost = tokens × `config.prices`.
 * A rate-limit error carries no reset time: the task pauses for a minute.
 */
export const codex: CliParser = {
  // The prompt is read from stdin (no prompt argument). Interface only: the Codex engineer owns the mapping.
  argv(model, extra, permission) {
    return ['exec', '--json', ...(model === undefined ? [] : ['-m', model]), ...codex.permissionArgs(permission), ...extra]
  },
  permissionArgs(permission) {
    if (permission === 'full') return ['--dangerously-bypass-approvals-and-sandbox']
    return ['-s', permission === 'edit' ? 'workspace-write' : 'read-only']
  },
  onEvent(event, state, events) {
    switch (event.type) {
      case 'thread.started':
        if (typeof event.thread_id === 'string') state.sessionId = event.thread_id
        return
      case 'item.completed': {
        const item = obj(event.item)
        if (item.type === 'agent_message' && typeof item.text === 'string') {
          state.text = item.text
          events.log(preview(item.text, 2000))
        } else if (item.type === 'command_execution') events.log(`command ${preview(item.command)} (exit ${String(item.exit_code ?? '?')})`)
        else if (item.type === 'file_change') events.log(`file change ${preview(item.changes)}`)
        else if (item.type === 'mcp_tool_call') events.log(`tool ${String(item.server ?? '')}.${String(item.tool ?? '')}`)
        return
      }
      case 'turn.completed': {
        state.done = true
        const usage = obj(event.usage)
        events.usage({ inputTokens: num(usage.input_tokens), outputTokens: num(usage.output_tokens) })
        events.turn(undefined)
        return
      }
      case 'turn.failed':
      case 'error': {
        const message = event.type === 'error' ? String(event.message ?? 'error') : String(obj(event.error).message ?? 'turn failed')
        state.error = message
        if (RATE_LIMITED.test(message)) state.rateLimitedUntil = Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
        return
      }
      default:
        return
    }
  },
}
