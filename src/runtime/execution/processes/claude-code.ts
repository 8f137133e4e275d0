import type { CliPermission } from '../../plan/agent-spec.ts'
import { DEFAULT_RATE_LIMIT_PAUSE_MS, num, obj, preview, type CliParser } from './cli-driver.ts'

/** Claude Code's `--permission-mode` per troupe permission level (see docs/agents-cli.md). */
const PERMISSION_MODES: Readonly<Record<CliPermission, string>> = {
  // Only what needs no approval (Read, Glob, Grep…, and the allowed MCP tools); anything else is denied, not asked.
  'read-only': 'dontAsk',
  // File edits in the working directory are accepted; other commands are denied.
  edit: 'acceptEdits',
  // Everything. Claude Code refuses it as root unless IS_SANDBOX=1 is in the agent's env.
  full: 'bypassPermissions',
}

/** Message ids already counted, per stream state (one model call may come as several `assistant` events). */
const counted = new WeakMap<object, Set<string>>()

/**
 * Claude Code 2.x headless: `claude -p --output-format stream-json --verbose`, the prompt on
 * stdin. Events (one JSON object per line): `system/init` (session_id, model),
 * `system/api_retry` (attempt, max_retries, retry_delay_ms, error_status: a call failed and the
 * CLI retries it by itself), `system/permission_denied` (tool_name, message), `assistant` (one
 * per content block: `message.id`, `message.model`, `message.usage` as of `message_start`;
 * `text` and `tool_use` blocks), `user` (tool results), `rate_limit_event` (subscription logins
 * only: `rate_limit_info.status` allowed | allowed_warning | rejected, `resetsAt` in epoch
 * seconds), and a final `result` (`subtype` success | error_*, `is_error`, `result` text,
 * `num_turns`, `total_cost_usd`, `usage`, `permission_denials[]` of
 * `{tool_name, tool_use_id, tool_input}`, `api_error_status`).
 *
 * Spend: each model call is reported at its first `assistant` event (tokens × `config.prices`,
 * by the model Claude names); the `result`'s `total_cost_usd` and token totals then correct the
 * sum upwards (Claude prices what the stream cannot show: final output tokens, sub-agents).
 */
export const claudeCode: CliParser = {
  argv(model, extra, permission, resume) {
    const modelArgs = model === undefined ? [] : ['--model', model]
    // `--resume <id>`: the same session (its id stays), the repair prompt as the next user message.
    const resumeArgs = resume === undefined ? [] : ['--resume', resume]
    const permissionArgs = claudeCode.permissionArgs(permission)
    return ['-p', '--output-format', 'stream-json', '--verbose', ...resumeArgs, ...modelArgs, ...permissionArgs, ...extra]
  },
  permissionArgs(permission) {
    return ['--permission-mode', PERMISSION_MODES[permission]]
  },
  onEvent(event, state, events) {
    if (typeof event.session_id === 'string') state.sessionId = event.session_id
    switch (event.type) {
      case 'system': {
        if (event.subtype === 'init' && typeof event.model === 'string') state.model = event.model
        else if (event.subtype === 'api_retry') {
          const status = num(event.error_status)
          const failure = status > 0 ? `HTTP ${status}` : String(event.error ?? 'error')
          const retry = `retry ${num(event.attempt)}/${num(event.max_retries)} in ${num(event.retry_delay_ms)} ms`
          const what = `API call failed (${failure}), ${retry}`
          // Paused for twice the CLI's delay: its retry (and, while the storm lasts, the next
          // api_retry that extends the pause) lands inside the pause, so no other task slips in.
          if (status === 429) events.rateLimited(Date.now() + 2 * Math.max(1000, num(event.retry_delay_ms)), what)
          else events.log(what)
        } else if (event.subtype === 'permission_denied') {
          events.log(`permission denied: ${String(event.tool_name ?? '?')}: ${preview(event.message ?? event.decision_reason ?? '', 500)}`)
        }
        return
      }
      case 'assistant': {
        const message = obj(event.message)
        // `<synthetic>`: a message Claude Code writes itself (an API error's text), not a model call.
        const synthetic = message.model === '<synthetic>'
        if (typeof message.model === 'string' && !synthetic) state.model = message.model
        const id = typeof message.id === 'string' && !synthetic ? message.id : undefined
        let seen = counted.get(state)
        if (seen === undefined) counted.set(state, (seen = new Set()))
        if (id !== undefined && !seen.has(id)) {
          seen.add(id)
          const usage = obj(message.usage)
          events.usage({
            inputTokens: num(usage.input_tokens) + num(usage.cache_creation_input_tokens),
            cachedInputTokens: num(usage.cache_read_input_tokens),
            outputTokens: num(usage.output_tokens),
            ...(typeof message.model === 'string' ? { model: message.model } : {}),
          })
        }
        let tools = 0
        for (const block of Array.isArray(message.content) ? message.content : []) {
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
          state.rateLimitedUntil = resetsAt > 0 ? resetsAt * 1000 : Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
          events.rateLimited(state.rateLimitedUntil, `rate limit reached (${String(info.rateLimitType ?? 'unknown window')})`)
        }
        return
      }
      case 'result': {
        state.done = true
        if (typeof event.result === 'string') state.text = event.result
        const usage = obj(event.usage)
        const cached = num(usage.cache_read_input_tokens)
        const input = num(usage.input_tokens) + num(usage.cache_creation_input_tokens)
        const output = num(usage.output_tokens)
        // What the stream did not show: the difference to Claude's own totals (never negative).
        // Its cost spans every run of a resumed session (a repair): the runs before are taken
        // off (unless it is lower than theirs, i.e. Claude did not carry it over).
        const sessionCost = typeof event.total_cost_usd === 'number' ? num(event.total_cost_usd) : undefined
        const prior = state.priorTotals?.costUsd
        const totalCost = sessionCost !== undefined && prior !== undefined && sessionCost >= prior ? sessionCost - prior : sessionCost
        if (sessionCost !== undefined) state.sessionTotals = { costUsd: sessionCost }
        const missingIn = Math.max(0, input + cached - state.inputTokens)
        const missingOut = Math.max(0, output - state.outputTokens)
        const missingCost = totalCost === undefined ? undefined : Math.max(0, totalCost - state.costUsd)
        if (missingIn > 0 || missingOut > 0 || (missingCost ?? 0) > 0) {
          const cost = missingCost === undefined ? {} : { costUsd: missingCost }
          events.finalUsage({ inputTokens: missingIn, outputTokens: missingOut, ...cost })
        }
        for (const denial of Array.isArray(event.permission_denials) ? event.permission_denials : []) {
          const d = obj(denial)
          const input = obj(d.tool_input)
          const target = input.file_path ?? input.path ?? input.command ?? input.notebook_path ?? input.url
          state.permissionDenials.push(`${String(d.tool_name ?? '?')}${target === undefined ? '' : ` ${preview(target, 200)}`}`)
        }
        if (num(event.api_error_status) === 429) state.rateLimitedUntil = Date.now() + DEFAULT_RATE_LIMIT_PAUSE_MS
        if (event.is_error === true || (typeof event.subtype === 'string' && event.subtype !== 'success')) {
          const status = num(event.api_error_status)
          const result = typeof event.result === 'string' && event.result.length > 0 ? `: ${preview(event.result, 1000)}` : ''
          state.error = `${String(event.subtype ?? 'error')}${status > 0 ? ` (API status ${status})` : ''}${result}`
        }
        return
      }
      default:
        return
    }
  },
}
