import type { CliPermission } from '../../plan/agent-spec.ts'
import { DEFAULT_RATE_LIMIT_PAUSE_MS, num, obj, preview, type CliParser } from './cli-driver.ts'

const RATE_LIMITED = /rate.?limit|429|too many requests|usage limit/i

/** Codex's own retry notice: `Reconnecting... 2/5 (…)`. Codex goes on by itself; only `turn.failed` ends the turn. */
const RECONNECTING = /^Reconnecting\.\.\./

/** `--sandbox` per `permissions`. `codex exec` never asks for approval: what the sandbox refuses fails. */
const SANDBOX: Readonly<Record<CliPermission, string>> = { 'read-only': 'read-only', edit: 'workspace-write', full: 'danger-full-access' }

/** Codex's stderr chatter (kept in the log, out of error messages). */
const NOISE = [/^Reading (additional input|prompt) from stdin/, /^WARNING: proceeding, even though we could not create PATH aliases/, /^\s*$/]

/**
 * Codex headless: `codex exec --json --skip-git-repo-check -s S [-m M] [args] -` with the prompt
 * on stdin (`-`). troupe chooses the working directory (a worktree, or the plan's directory), so
 * Codex's "not inside a trusted git repository" guard, meant for an interactive start in the
 * wrong place, is skipped. Events: `thread.started` (`thread_id`), `turn.started`,
 * `item.started` / `item.updated` / `item.completed` (items: `agent_message` with `text`,
 * `reasoning`, `command_execution` with `command`, `file_change`, `mcp_tool_call`, `web_search`,
 * `todo_list`, `error` for warnings), `turn.completed` (`usage`: `input_tokens`,
 * `cached_input_tokens`, `output_tokens`, summed over the turn's model calls), `turn.failed`
 * (`error.message`), and `error` (`message`).
 *
 * An `error` is not the end: `Reconnecting... n/5 (… 429 …)` is Codex retrying by itself, and a
 * session it recovers ends with `turn.completed` and exit 0. Only `turn.failed` (or another
 * `error` not followed by a completed turn) fails the task, and only such a final rate limit
 * re-queues it. Codex reports tokens, not cost: cost = tokens × `config.prices`. A rate-limit
 * failure carries no reset time: the task pauses for a minute.
 */
export const codex: CliParser = {
  argv(model, extra, permission) {
    return ['exec', '--json', '--skip-git-repo-check', ...codex.permissionArgs(permission), ...(model === undefined ? [] : ['-m', model]), ...extra, '-']
  },
  permissionArgs(permission) {
    return ['-s', SANDBOX[permission]]
  },
  isNoise: (line) => NOISE.some((pattern) => pattern.test(line)),
  onEvent(event, state, events) {
    switch (event.type) {
      case 'thread.started':
        if (typeof event.thread_id === 'string') state.sessionId = event.thread_id
        return
      case 'item.completed': {
        const item = obj(event.item)
        if (item.type === 'agent_message' && typeof item.text === 'string') {
          state.text = item.text
          for (const line of item.text.split('\n')) if (line.trim().length > 0) events.log(preview(line, 2000))
        } else if (item.type === 'command_execution') events.log(`command ${preview(item.command)} (exit ${String(item.exit_code ?? '?')})`)
        else if (item.type === 'file_change') {
          events.log(`file change ${preview(item.changes)}${item.status === 'failed' ? ' (failed)' : ''}`)
          if (item.status === 'failed') state.permissionDenials.push(`file change ${preview(item.changes, 100)}`)
        } else if (item.type === 'mcp_tool_call') {
          const failed = item.status === 'failed' ? ` failed: ${preview(obj(item.error).message ?? item.error)}` : ''
          events.log(`tool ${String(item.server ?? '')}.${String(item.tool ?? '')}${failed}`)
        } else if (item.type === 'error') events.log(`warning: ${preview(item.message, 1000)}`)
        return
      }
      case 'turn.completed': {
        state.done = true
        // A turn that completed recovered from whatever was reported before it.
        state.error = undefined
        state.rateLimitedUntil = undefined
        const usage = obj(event.usage)
        events.usage(num(usage.input_tokens), num(usage.output_tokens), undefined)
        events.turn(undefined)
        return
      }
      case 'error': {
        const message = String(event.message ?? 'error')
        events.log(`codex: ${message}`)
        if (RECONNECTING.test(message)) return
        state.error = message
        if (RATE_LIMITED.test(message)) state.rateLimitedUntil = Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
        return
      }
      case 'turn.failed': {
        const message = String(obj(event.error).message ?? 'turn failed')
        state.error = message
        if (RATE_LIMITED.test(message)) state.rateLimitedUntil = Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
        return
      }
      default:
        return
    }
  },
}
