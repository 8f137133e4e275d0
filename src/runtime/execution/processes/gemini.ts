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
const DENIED = new Set(['policy_violation', 'permission_denied', 'execution_denied'])

/**
 * Gemini's own tools that an approval mode leaves out of a headless session (a call to one is
 * `tool_not_registered`): refused for want of permission, unlike a tool name the model made up.
 */
const GATED_TOOLS = new Set([
  'replace',
  'write_file',
  'web_fetch',
  'run_shell_command',
  'list_background_processes',
  'read_background_output',
  'write_todos',
  'activate_skill',
])

/**
 * Gemini CLI's stderr chatter: terminal and startup warnings, the approval-mode banner, the
 * fallback to its own grep, its per-retry notices, and the stack traces and object dumps it
 * prints with them (indented lines, closing brackets). Kept in the log, out of error messages.
 */
const NOISE = new RegExp(
  [
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
    .map((pattern) => pattern.source)
    .join('|'),
)

/** Gemini's retry notices on stderr: `Attempt 2 failed: <message>`, then `… Retrying after 5393ms...`. */
const ATTEMPT_FAILED = /^Attempt \d+ failed: (.*)$/
const RETRYING_AFTER = /Retrying after (\d+)ms/

/** Where one stream is between events: the assistant line being assembled and the model call in progress. */
interface Progress {
  /** Assistant text since the last newline, not yet logged. */
  line: string
  /** The assistant's current message, since the last tool event (the final one is the answer). */
  message: string
  /** Whether a model call's output is being received (false after tool results went back). */
  inCall: boolean
  /** The rate-limit message of the last failed attempt Gemini is retrying, until its delay is known. */
  retrying: string | undefined
}

const progress = new WeakMap<StreamState, Progress>()

function progressOf(state: StreamState): Progress {
  let p = progress.get(state)
  if (p === undefined) progress.set(state, (p = { line: '', message: '', inCall: false, retrying: undefined }))
  return p
}

/** Logs the assistant text assembled so far as whole lines (and the rest too, when `all`). */
function flush(p: Progress, events: CliEvents, all: boolean): void {
  const lines = p.line.split('\n')
  p.line = all ? '' : lines.pop()!
  for (const line of lines) if (line.trim().length > 0) events.log(line)
}

/**
 * A new model call's first output: counted at once (its tokens come with the `result`: the
 * stream reports no usage per call).
 */
function callStarted(p: Progress, events: CliEvents): void {
  if (p.inCall) return
  p.inCall = true
  p.message = ''
  events.usage({ inputTokens: 0, outputTokens: 0 })
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
 * The stream has no per-response usage: model calls are counted as they stream (a call's first
 * message or tool call after tool results went back), their tokens at `result`, per model in
 * `stats.models` (the model names the API reported), counted with the attempt's result
 * (`CliEvents.finalUsage`). Gemini retries a 429 by itself and says so
 * only on stderr (`Attempt n failed: …` / `Retrying after N ms`): the task's limits pause that
 * long, and the session goes on. Deltas are assembled into
 * lines for the log; the output's text is the last assistant message (the answer), not every
 * message glued together. Tokens, not cost: cost = tokens × `config.prices`. Quota errors
 * pause the task a minute.
 */
export const gemini: CliParser = {
  argv(model, extra, permission, resume) {
    return [
      '--output-format',
      'stream-json',
      '--skip-trust',
      // `--resume <session id>` (an index or `latest` also work there; troupe names the session of the attempt before).
      ...(resume === undefined ? [] : ['--resume', resume]),
      ...gemini.permissionArgs(permission),
      ...(model === undefined ? [] : ['-m', model]),
      ...extra,
    ]
  },
  permissionArgs(permission) {
    return ['--approval-mode', APPROVAL_MODE[permission]]
  },
  stderrNoise: NOISE,
  onStderrLine(line, state, events) {
    const p = progressOf(state)
    const failed = ATTEMPT_FAILED.exec(line)
    if (failed !== null) {
      p.retrying = RATE_LIMITED.test(failed[1]!) ? failed[1] : undefined
      return
    }
    const after = RETRYING_AFTER.exec(line)
    if (after !== null && p.retrying !== undefined) {
      events.rateLimited(Date.now() + Number(after[1]), p.retrying)
      p.retrying = undefined
    }
  },
  onEvent(event, state, events) {
    const p = progressOf(state)
    switch (event.type) {
      case 'init':
        if (typeof event.session_id === 'string') state.sessionId = event.session_id
        if (typeof event.model === 'string' && event.model !== 'auto') state.model = event.model
        return
      case 'message': {
        if (event.role !== 'assistant' || typeof event.content !== 'string') return
        callStarted(p, events)
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
        callStarted(p, events)
        events.log(`tool ${String(event.tool_name)} ${preview(event.parameters)}`)
        events.turn(`tool ${String(event.tool_name)}`)
        return
      case 'tool_result': {
        flush(p, events, true)
        p.inCall = false
        if (event.status === 'success') return
        const error = obj(event.error)
        const message = String(error.message ?? event.output ?? 'failed')
        events.log(`tool ${String(event.tool_id)} failed: ${preview(message, 1000)}`)
        // The tool id is `<name>__<name>_<time>_<n>`: the name is what was refused.
        const name = String(event.tool_id ?? '').split('__')[0] || String(event.tool_id)
        const type = String(error.type ?? '')
        if (DENIED.has(type) || (type === 'tool_not_registered' && GATED_TOOLS.has(name))) state.permissionDenials.push(`${name} (${type})`)
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
        // Tokens per model the API reported (`modelVersion`), for the calls counted live: they go
        // with the result, so a completed session whose tokens cross the budget keeps its output.
        const models = Object.entries(obj(stats.models)).map(([model, value]) => [model, obj(value)] as const)
        for (const [model, m] of models) {
          const cached = num(m.cached)
          const input = typeof m.input === 'number' ? num(m.input) : Math.max(0, num(m.input_tokens) - cached)
          if (input + cached + num(m.output_tokens) > 0)
            events.finalUsage({ inputTokens: input, cachedInputTokens: cached, outputTokens: num(m.output_tokens), model })
        }
        if (models.length === 0 && num(stats.input_tokens) + num(stats.output_tokens) > 0) {
          events.finalUsage({ inputTokens: num(stats.input_tokens), outputTokens: num(stats.output_tokens) })
        }
        if (event.status !== 'success') {
          const error = obj(event.error)
          state.error = String(error.message ?? event.status ?? 'error')
          if (RATE_LIMITED.test(`${String(error.type ?? '')} ${state.error}`))
            state.rateLimitedUntil = Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
        }
        return
      }
      default:
        return
    }
  },
}
