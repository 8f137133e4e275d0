import type { CliPermission } from '../../plan/agent-spec.ts'
import { DEFAULT_RATE_LIMIT_PAUSE_MS, num, obj, preview, type CliEvents, type CliParser, type StreamState } from './cli-driver.ts'

const RATE_LIMITED = /rate.?limit|quota|429|resource.?exhausted|too many requests/i

/**
 * `--approval-mode` per `permissions`. Headless Gemini offers only the tools the mode approves
 * (a call to any other is `tool_not_registered`): `default` leaves read tools, `auto_edit` adds
 * the file-edit tools, `yolo` adds the shell and everything else.
 */
const APPROVAL_MODE: Readonly<Record<CliPermission, string>> = { 'read-only': 'default', edit: 'auto_edit', full: 'yolo' }

/** Tool errors that mean "not allowed here" rather than "went wrong". */
const DENIED = new Set(['tool_not_registered', 'policy_violation', 'permission_denied', 'execution_denied'])

/**
 * Gemini CLI's stderr chatter: terminal and startup warnings, the approval-mode banner, the
 * fallback to its own grep, its per-retry notices, and the stack traces and object dumps it
 * prints with them (indented lines, closing brackets). Kept in the log, out of error messages.
 */
const NOISE = [
  /^Warning: 256-color support not detected/,
  /^YOLO mode is enabled/,
  /^Ripgrep is not available/,
  /^\[STARTUP\]/,
  /^\[Routing\]/,
  /^Attempt \d+ failed/,
  /^Suggested retry after/,
  /^Loaded cached credentials/,
  /^\s+\S/,
  /^\s*[}\]][,;]?\s*$/,
  /^\s*$/,
]

/** Where one stream is between events: the assistant line being assembled and the model call in progress. */
interface Progress {
  /** Assistant text since the last newline, not yet logged. */
  line: string
  /** The assistant's current message, since the last tool event (the final one is the answer). */
  message: string
  /** Whether a model call's output is being received (false after tool results went back). */
  inCall: boolean
}

const progress = new WeakMap<StreamState, Progress>()

function progressOf(state: StreamState): Progress {
  let p = progress.get(state)
  if (p === undefined) progress.set(state, (p = { line: '', message: '', inCall: false }))
  return p
}

/** Logs the assistant text assembled so far as whole lines (and the rest too, when `all`). */
function flush(p: Progress, events: CliEvents, all: boolean): void {
  const lines = p.line.split('\n')
  p.line = all ? '' : lines.pop()!
  for (const line of lines) if (line.trim().length > 0) events.log(line)
}

/** A new model call's first output: one more turn. */
function callStarted(p: Progress, events: CliEvents, message: string | undefined): void {
  if (p.inCall) return
  p.inCall = true
  p.message = ''
  events.turn(message)
}

/**
 * Gemini CLI headless: `gemini --output-format stream-json --skip-trust --approval-mode M [-m M]`
 * with the prompt on stdin (a piped stdin without `-p` is the prompt, headless). Events: `init`
 * (`session_id`, `model`), `message` (`role` user | assistant, `content`; real Gemini streams the
 * assistant's text as `delta: true` chunks), `tool_use` (`tool_name`, `tool_id`, `parameters`),
 * `tool_result` (`tool_id`, `status` success | error, `output`, `error.type`), `error`
 * (non-fatal: `severity`, `message`), and a final `result` (`status` success | error,
 * `error.message`, `stats` with token counts per model).
 *
 * The stream has no per-response usage: spend is counted at `result`, per model in
 * `stats.models` (the model names the API reported). Model calls are counted as they stream: a
 * call's first message or tool call after tool results went back. Deltas are assembled into
 * lines for the log; the output's text is the last assistant message (the answer), not every
 * message glued together. Tokens, not cost: cost = tokens × `config.prices`. Quota errors
 * pause the task a minute.
 */
export const gemini: CliParser = {
  argv(model, extra, permission) {
    return ['--output-format', 'stream-json', '--skip-trust', ...gemini.permissionArgs(permission), ...(model === undefined ? [] : ['-m', model]), ...extra]
  },
  permissionArgs(permission) {
    return ['--approval-mode', APPROVAL_MODE[permission]]
  },
  isNoise: (line) => NOISE.some((pattern) => pattern.test(line)),
  onEvent(event, state, events) {
    const p = progressOf(state)
    switch (event.type) {
      case 'init':
        if (typeof event.session_id === 'string') state.sessionId = event.session_id
        return
      case 'message': {
        if (event.role !== 'assistant' || typeof event.content !== 'string') return
        callStarted(p, events, undefined)
        if (event.delta === true) {
          p.message += event.content
          p.line += event.content
          flush(p, events, false)
        } else {
          flush(p, events, true)
          p.message = event.content
          for (const line of event.content.split('\n')) if (line.trim().length > 0) events.log(preview(line, 2000))
        }
        state.text = p.message
        return
      }
      case 'tool_use':
        flush(p, events, true)
        callStarted(p, events, `tool ${String(event.tool_name)}`)
        events.log(`tool ${String(event.tool_name)} ${preview(event.parameters)}`)
        return
      case 'tool_result': {
        flush(p, events, true)
        p.inCall = false
        if (event.status === 'success') return
        const error = obj(event.error)
        const message = String(error.message ?? event.output ?? 'failed')
        events.log(`tool ${String(event.tool_id)} failed: ${preview(message, 1000)}`)
        if (typeof error.type === 'string' && DENIED.has(error.type)) {
          // The tool id is `<name>__<name>_<time>_<n>`: the name is what was refused.
          const name = String(event.tool_id ?? '').split('__')[0] || String(event.tool_id)
          state.permissionDenials.push(`${name} (${error.type})`)
        }
        return
      }
      case 'error':
        flush(p, events, true)
        events.log(`${String(event.severity ?? 'error')}: ${String(event.message ?? '')}`)
        return
      case 'result': {
        flush(p, events, true)
        state.done = true
        const stats = obj(event.stats)
        const models = Object.entries(obj(stats.models)).map(([model, value]) => [model, obj(value)] as const)
        const counted = models.filter(([, m]) => num(m.input_tokens) + num(m.output_tokens) > 0)
        if (counted.length > 0) for (const [model, m] of counted) events.usage(num(m.input_tokens), num(m.output_tokens), undefined, model)
        else if (num(stats.input_tokens) + num(stats.output_tokens) > 0) events.usage(num(stats.input_tokens), num(stats.output_tokens), undefined)
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
