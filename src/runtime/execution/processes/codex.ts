import type { CliPermission } from '../../plan/agent-spec.ts'
import type { SessionTotals } from '../executor.ts'
import { DEFAULT_RATE_LIMIT_PAUSE_MS, num, obj, preview, type CliEvents, type CliParser, type StreamState } from './cli-driver.ts'

const RATE_LIMITED = /rate.?limit|429|too many requests|usage limit/i

/** Codex's own retry notice: `Reconnecting... 2/5 (…)`. Codex goes on by itself; only `turn.failed` ends the turn. */
const RECONNECTING = /^Reconnecting\.\.\./

/** `--sandbox` per `permissions`. `codex exec` never asks for approval: what the sandbox refuses fails. */
const SANDBOX: Readonly<Record<CliPermission, string>> = { 'read-only': 'read-only', edit: 'workspace-write', full: 'danger-full-access' }

/** What a command says when the sandbox refused it. */
const SANDBOX_REFUSED = /[^\n]*Read-only file system[^\n]*/

/** Codex's stderr chatter (kept in the log, out of error messages). */
const NOISE = /^Reading (additional input|prompt) from stdin|^WARNING: proceeding, even though we could not create PATH aliases|^\s*$/

/** How long a Codex retry of a 429 pauses the task's limits (Codex does not say when it retries; its backoff is seconds). */
const RETRY_PAUSE_MS = 5_000

/** Tool items: a model call's function calls, which Codex runs before the next call. */
const TOOL_ITEMS = new Set(['command_execution', 'mcp_tool_call', 'file_change', 'web_search'])

/** Where one turn is: tool items running, and whether tool results are waiting for the next model call. */
interface Calls {
  /** Tool items started and not completed. */
  started: Set<string>
  resultsPending: boolean
  inCall: boolean
}

const calls = new WeakMap<StreamState, Calls>()

/**
 * Counts model calls as items stream: the first item of a turn starts one, and after tool items
 * finished (their results go back to the model) the next item that is not a tool finishing
 * starts another. A call's parallel tool calls start together, so they count once.
 */
function itemSeen(state: StreamState, events: CliEvents, item: Record<string, unknown>, completed: boolean): void {
  if (item.type === 'error') return
  let c = calls.get(state)
  if (c === undefined) calls.set(state, (c = { started: new Set(), resultsPending: false, inCall: false }))
  const id = String(item.id ?? '')
  const tool = TOOL_ITEMS.has(String(item.type))
  // A tool item finishing is not new model output, unless it was never reported started (a file change).
  if (!(tool && completed && c.started.has(id)) && (!c.inCall || (c.resultsPending && c.started.size === 0))) {
    c.inCall = true
    c.resultsPending = false
    events.usage({ inputTokens: 0, outputTokens: 0 })
  }
  if (tool && !completed) c.started.add(id)
  if (tool && completed) {
    c.started.delete(id)
    c.resultsPending = true
  }
}

interface Tokens {
  readonly inputTokens: number
  readonly cachedInputTokens: number
  readonly outputTokens: number
}

/** What `totals` added to `before` (Codex's totals span a whole thread), or `totals` if they are not a continuation of `before`. */
function since(totals: Tokens, before: SessionTotals): Tokens {
  const { inputTokens: beforeIn, cachedInputTokens: beforeCached, outputTokens: beforeOut } = before
  if (beforeIn === undefined || beforeCached === undefined || beforeOut === undefined) return totals
  const cached = totals.cachedInputTokens - beforeCached
  const input = totals.inputTokens + totals.cachedInputTokens - (beforeIn + beforeCached)
  const output = totals.outputTokens - beforeOut
  if (cached < 0 || input < 0 || output < 0) return totals
  return { inputTokens: Math.max(0, input - cached), cachedInputTokens: Math.min(cached, input), outputTokens: output }
}

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
 * re-queues it; a 429 Codex is retrying pauses the task's limits for a few seconds at once
 * (`CliEvents.rateLimited`). Model calls are counted as items stream (`itemSeen`), their tokens
 * at `turn.completed`, the only usage Codex reports: final usage, counted with the attempt's
 * result (`CliEvents.finalUsage`). Codex reports tokens, not cost: cost =
 * tokens × `config.prices` (cached input at its own price). A rate-limit failure carries no
 * reset time: the task pauses for a minute.
 */
export const codex: CliParser = {
  argv(model, extra, permission, resume) {
    const modelArgs = model === undefined ? [] : ['-m', model]
    // `codex exec [options] resume <SESSION_ID> -`: the thread of `thread.started`, the repair prompt on stdin.
    const resumeArgs = resume === undefined ? [] : ['resume', resume]
    return ['exec', '--json', '--skip-git-repo-check', ...codex.permissionArgs(permission), ...modelArgs, ...extra, ...resumeArgs, '-']
  },
  permissionArgs(permission) {
    return ['-s', SANDBOX[permission]]
  },
  stderrNoise: NOISE,
  onEvent(event, state, events) {
    switch (event.type) {
      case 'thread.started':
        if (typeof event.thread_id === 'string') state.sessionId = event.thread_id
        return
      case 'item.started':
        itemSeen(state, events, obj(event.item), false)
        return
      case 'item.completed': {
        const item = obj(event.item)
        itemSeen(state, events, item, true)
        if (item.type === 'agent_message' && typeof item.text === 'string') {
          state.text = item.text
          for (const line of item.text.split('\n')) if (line.trim().length > 0) events.log(preview(line, 2000))
        } else if (item.type === 'command_execution') {
          events.log(`command ${preview(item.command)} (exit ${String(item.exit_code ?? '?')})`)
          // The sandbox refused a write (read-only sandbox, or outside the workspace).
          const refused =
            item.exit_code !== 0 && typeof item.aggregated_output === 'string' ? SANDBOX_REFUSED.exec(item.aggregated_output) : null
          if (refused !== null) state.permissionDenials.push(`command ${preview(item.command, 100)}: ${preview(refused[0])}`)
        } else if (item.type === 'file_change') {
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
        // The thread's tokens so far, summed over its model calls (counted live): no more calls,
        // and it goes with the result, so a completed turn whose tokens cross the budget keeps
        // its output. A resumed thread (a repair) reports the runs before it too: those are
        // taken off (unless the totals are lower than theirs, i.e. Codex did not carry them).
        const usage = obj(event.usage)
        const cached = Math.min(num(usage.cached_input_tokens), num(usage.input_tokens))
        const input = num(usage.input_tokens) - cached
        const totals: Tokens = { inputTokens: input, cachedInputTokens: cached, outputTokens: num(usage.output_tokens) }
        const before = state.sessionTotals ?? state.priorTotals
        state.sessionTotals = totals
        events.finalUsage(before === undefined ? totals : since(totals, before))
        calls.delete(state)
        return
      }
      case 'error': {
        const message = String(event.message ?? 'error')
        if (RECONNECTING.test(message)) {
          if (RATE_LIMITED.test(message)) events.rateLimited(Date.now() + RETRY_PAUSE_MS, message)
          else events.log(`codex: ${message}`)
          return
        }
        events.log(`codex: ${message}`)
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
