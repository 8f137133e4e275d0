import { DEFAULT_RATE_LIMIT_PAUSE_MS, num, obj, preview, type CliParser } from './cli-driver.ts'

const RATE_LIMITED = /rate.?limit|quota|429|resource.?exhausted|too many requests/i

/**
 * Gemini CLI headless: `gemini -p <prompt> --output-format stream-json [-m M]`. Events:
 * `init` (`session_id`, `model`), `message` (`role` user | assistant, `content`, `delta`
 * for chunks), `tool_use` (`tool_name`, `tool_id`, `parameters`), `tool_result`
 * (`tool_id`, `status`, `output`), `error` (non-fatal: `severity`, `message`), and a final
 * `result` (`status` success | error, `error.message`, `stats` with token counts).
 * Tokens, not cost: cost = tokens × `config.prices`. Quota errors pause the task a minute.
 */
export const gemini: CliParser = {
  // The prompt is read from stdin (no -p). Interface only: the Gemini engineer owns the mapping.
  argv(model, extra, permission) {
    return ['--output-format', 'stream-json', ...(model === undefined ? [] : ['-m', model]), ...gemini.permissionArgs(permission), ...extra]
  },
  permissionArgs(permission) {
    return ['--approval-mode', permission === 'full' ? 'yolo' : permission === 'edit' ? 'auto_edit' : 'default']
  },
  onEvent(event, state, events) {
    switch (event.type) {
      case 'init':
        if (typeof event.session_id === 'string') state.sessionId = event.session_id
        return
      case 'message':
        if (event.role === 'assistant' && typeof event.content === 'string') {
          state.text += event.content
          if (event.delta !== true) events.log(preview(event.content, 2000))
        }
        return
      case 'tool_use':
        events.log(`tool ${String(event.tool_name)} ${preview(event.parameters)}`)
        events.turn(`tool ${String(event.tool_name)}`)
        return
      case 'error':
        events.log(`${String(event.severity ?? 'error')}: ${String(event.message ?? '')}`)
        return
      case 'result': {
        state.done = true
        const stats = obj(event.stats)
        events.usage({ inputTokens: num(stats.input_tokens), outputTokens: num(stats.output_tokens) })
        if (event.status !== 'success') {
          const error = obj(event.error)
          state.error = String(error.message ?? event.status ?? 'error')
          if (RATE_LIMITED.test(`${String(error.type ?? '')} ${state.error}`)) state.rateLimitedUntil = Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
        }
        return
      }
      default:
        return
    }
  },
}
