import { stripVTControlCharacters } from 'node:util'
import type { UsageReport } from '../../admission/usage.ts'
import type { ModelPrice } from '../../core/config.ts'
import type { CliAgentSpec, CliPermission } from '../../plan/agent-spec.ts'
import { renderString } from '../../plan/templates.ts'
import type { AttemptResult, SessionTotals } from '../executor.ts'
import type { GroupExit } from './process-group.ts'
import { cutMarker, exitFailure, type DriverContext, type ProcessDriver } from './process-driver.ts'

/** What a CLI's event stream has told so far; filled by its parser. */
export interface StreamState {
  text: string
  sessionId: string | undefined
  /** Model calls so far (every CLI kind counts the same thing). */
  turns: number
  /** Input tokens, cached ones included. */
  inputTokens: number
  outputTokens: number
  costUsd: number
  /** The stream ended with a result (Claude, Gemini) or a completed turn (Codex). */
  done: boolean
  /** A result or error event said the run failed. */
  error: string | undefined
  /** The session ended on a rate limit (not a retry the CLI recovered from): epoch ms it may try again. */
  rateLimitedUntil: number | undefined
  /** Tool calls the CLI refused for want of permission, one line each (`Write /path`). */
  permissionDenials: string[]
  /** The model the CLI says it used (for `byModel`). */
  model: string | undefined
  /** What the CLI last reported for the session since its start (Codex: tokens, Claude: cost), for `output.sessionTotals`. */
  sessionTotals: SessionTotals | undefined
  /** A resumed session's totals before this run (the repair's `sessionTotals`), to take off what the CLI reports again. */
  priorTotals: SessionTotals | undefined
}

/** One model call's spend, as the CLI reports it. */
export interface ModelCall {
  /** Input tokens not read from a prompt cache. */
  readonly inputTokens: number
  /** Input tokens read from a prompt cache (priced at `cachedInputUsdPerMTok`). */
  readonly cachedInputTokens?: number
  readonly outputTokens: number
  /** The CLI's own cost, when it gives one; else tokens × `config.prices`. */
  readonly costUsd?: number
  /** @default the model the CLI reported, else the agent's */
  readonly model?: string
  /** Model calls this report stands for. @default 1 (0 for a correction at the session's end) */
  readonly apiCalls?: number
}

export interface CliEvents {
  /** Spend of one model call, reported to the run at once. */
  usage(call: ModelCall): void
  /**
   * Spend the stream only shows with its final result (Claude's totals minus what was streamed,
   * Codex's `turn.completed` tokens, Gemini's `result` stats; `apiCalls` 0 by default): it goes
   * with the attempt's result, counted after the outcome, so a completed task whose last spend
   * crosses the budget keeps its output. Calls add up, one report per model.
   */
  finalUsage(call: ModelCall): void
  /** A line for the live view (assistant text, a tool call). */
  log(line: string): void
  /** Progress note after a model call with tool calls (turns are counted by `usage`). */
  turn(message: string | undefined): void
  /**
   * The provider rate-limited a call the CLI is retrying by itself: the run pauses the task's
   * limits until `until` at once, and the session goes on (it is not re-run).
   */
  rateLimited(until: number, message: string): void
}

/** One CLI's headless interface: argv (the prompt goes on stdin) and how one stream event updates the state. */
export interface CliParser {
  /**
   * The argv without the prompt, which the driver writes to the CLI's stdin. Includes
   * `permissionArgs(permission)`; with `resume`, the CLI's flags that continue that session (a repair).
   */
  argv(model: string | undefined, extra: readonly string[], permission: CliPermission, resume?: string): string[]
  /** The CLI's own flags for a troupe permission level. */
  permissionArgs(permission: CliPermission): string[]
  onEvent(event: Record<string, unknown>, state: StreamState, events: CliEvents): void
  /** Known harmless stderr lines of this CLI: logged, but kept out of an error message. */
  readonly stderrNoise?: RegExp
  /** A stderr line (after it is logged), for CLIs that report some things only there (Gemini's retries). */
  onStderrLine?(line: string, state: StreamState, events: CliEvents): void
}

/** Pause used when a CLI reports a rate limit without a reset time. */
export const DEFAULT_RATE_LIMIT_PAUSE_MS = 60_000

/** The permission level a CLI attempt runs with: the agent's, else `edit` in a worktree and `read-only` outside one. */
export function permissionOf(spec: CliAgentSpec, workspace: string | undefined): CliPermission {
  return spec.permissions ?? (workspace !== undefined ? 'edit' : 'read-only')
}

/**
 * A coding-agent CLI in headless mode: the prompt on stdin (never in argv: a prompt starting
 * with `-` would be read as options, and argv is bounded), a JSONL event stream on stdout.
 * Lines that are not JSON objects (banners, warnings) go to the log. Spend is reported per
 * model call as it streams. Errors: tool calls the CLI refused for want of permission are
 * ERR_PERMISSION_DENIED (listing them); a failure the CLI reports in its stream is
 * ERR_TASK_FAILED (the agent ran and gave up: max turns, a tool error); a process that exits
 * non-zero without such a report is ERR_COMMAND_FAILED; a session that ended on a rate limit
 * fails with `rateLimitedUntil`, so the run pauses the task's limits and re-queues it (a rate
 * limit the CLI retries by itself only pauses the limits: `CliEvents.rateLimited`). Messages are
 * one line, free of terminal escapes; the CLI's known stderr chatter stays in the log only.
 */
export class CliDriver implements ProcessDriver {
  readonly file: string
  readonly args: readonly string[]
  /** The prompt, written to the CLI's stdin. */
  readonly stdin: string
  /** Event lines carry whole assistant messages and tool outputs: keep them whole up to here. */
  readonly maxLine = 32 * 1024 * 1024
  readonly permission: CliPermission
  readonly #spec: CliAgentSpec
  readonly #context: DriverContext
  readonly #parser: CliParser
  readonly #model: string | undefined
  readonly #maxTurns: number | undefined
  readonly #state: StreamState = {
    text: '',
    sessionId: undefined,
    turns: 0,
    inputTokens: 0,
    outputTokens: 0,
    costUsd: 0,
    done: false,
    error: undefined,
    rateLimitedUntil: undefined,
    permissionDenials: [],
    model: undefined,
    sessionTotals: undefined,
    priorTotals: undefined,
  }
  readonly #events: CliEvents
  /** Stderr lines that are not known chatter (for the error message). */
  #stderr = ''
  /** Spend reported with the final result (`CliEvents.finalUsage`) by model, sent with the attempt's result. */
  readonly #finalUsage = new Map<string | undefined, UsageReport>()

  constructor(spec: CliAgentSpec, context: DriverContext, parser: CliParser) {
    this.#spec = spec
    this.#context = context
    this.#parser = parser
    this.#model = spec.model ?? context.request.model
    const input = context.request.input
    const rawPrompt = input !== null && typeof input === 'object' ? (input as Record<string, unknown>).prompt : undefined
    if (typeof rawPrompt !== 'string' || rawPrompt.trim().length === 0) {
      throw new TypeError(`a ${spec.kind} agent takes its prompt from the task's input.prompt, which must be a non-empty string; got ${JSON.stringify(rawPrompt) ?? 'undefined'}`)
    }
    const prompt = renderString(rawPrompt, context.scope, `tasks.${context.request.taskId}.input.prompt`)
    // A repair resumes the session before, told what failed; without one, a fresh session gets the task's prompt and the failure.
    const repair = context.request.repair
    const resume = repair?.sessionId
    if (resume !== undefined) this.#state.priorTotals = repair?.sessionTotals
    this.stdin = repair === undefined ? prompt : resume !== undefined ? repair.prompt : `${prompt}\n\n${repair.prompt}`
    const extra = spec.args.map((arg, i) => renderString(arg, context.scope, `agents.${spec.name}.args[${i}]`))
    const maxTurnsAt = extra.indexOf('--max-turns')
    const maxTurns = maxTurnsAt === -1 ? NaN : Number(extra[maxTurnsAt + 1])
    this.#maxTurns = Number.isInteger(maxTurns) && maxTurns > 0 ? maxTurns : undefined
    this.permission = permissionOf(spec, context.request.workspace)
    this.file = spec.executable
    this.args = parser.argv(this.#model, [...(context.mcpArgs ?? []), ...extra], this.permission, resume)
    const listener = context.listener
    const state = this.#state
    const byName = (name: string | undefined) => (name === undefined ? undefined : context.prices[name])
    const price = (model: string | undefined) => context.prices[spec.name] ?? byName(model) ?? byName(this.#model)
    const count = (call: ModelCall, apiCalls: number): UsageReport => {
      const model = call.model ?? state.model ?? this.#model
      const cached = call.cachedInputTokens ?? 0
      const known = price(model)
      const cost = call.costUsd ?? (known === undefined ? 0 : callCost(known, call.inputTokens, cached, call.outputTokens))
      state.inputTokens += call.inputTokens + cached
      state.outputTokens += call.outputTokens
      state.costUsd += cost
      state.turns += apiCalls
      return { costUsd: cost, tokens: call.inputTokens + cached + call.outputTokens, apiCalls, ...(model === undefined ? {} : { model }) }
    }
    // Progress is known only against a turn budget (`--max-turns` in args).
    const progress = (message: string) => {
      if (this.#maxTurns !== undefined) listener.onProgress(Math.min(0.99, state.turns / this.#maxTurns), message)
    }
    this.#events = {
      usage: (call) => {
        const apiCalls = call.apiCalls ?? 1
        listener.onUsage(count(call, apiCalls))
        if (apiCalls > 0) progress(`model call ${state.turns}`)
      },
      finalUsage: (call) => {
        const report = count(call, call.apiCalls ?? 0)
        const before = this.#finalUsage.get(report.model)
        this.#finalUsage.set(report.model, before === undefined ? report : sumOf(before, report))
      },
      log: (line) => context.log(line),
      turn: (message) => {
        if (message !== undefined) progress(message)
      },
      rateLimited: (until, message) => {
        const when = new Date(until).toISOString()
        context.log(`rate limited, the CLI retries by itself; the limits this task uses pause until ${when}: ${message}`)
        listener.onRateLimited?.(until, message)
      },
    }
  }

  onStdoutLine(line: string, droppedChars: number): void {
    const trimmed = line.trim()
    if (trimmed.length === 0) return
    if (droppedChars === 0 && trimmed.startsWith('{')) {
      let event: unknown
      try {
        event = JSON.parse(trimmed)
      } catch {
        event = undefined
      }
      if (event !== null && typeof event === 'object' && typeof (event as { type?: unknown }).type === 'string') {
        this.#parser.onEvent(event as Record<string, unknown>, this.#state, this.#events)
        return
      }
    }
    this.#context.log(line + cutMarker(droppedChars))
  }

  onStderrLine(line: string): void {
    this.#context.log(line)
    this.#parser.onStderrLine?.(line, this.#state, this.#events)
    if (this.#parser.stderrNoise?.test(line) === true) return
    this.#stderr = `${this.#stderr}${line}\n`.slice(-4000)
  }

  finish(exit: GroupExit, tails: { readonly stdout: string; readonly stderr: string }): AttemptResult {
    const result = this.#outcome(exit, tails)
    const usage = this.lateUsage()
    return usage === undefined ? result : { ...result, usage }
  }

  /** The spend `CliEvents.finalUsage` held back, one report per model (also for an attempt stopped after its final result). */
  lateUsage(): readonly UsageReport[] | undefined {
    return this.#finalUsage.size === 0 ? undefined : [...this.#finalUsage.values()]
  }

  #outcome(exit: GroupExit, tails: { readonly stdout: string; readonly stderr: string }): AttemptResult {
    const name = this.#spec.name
    const kind = this.#spec.kind
    const state = this.#state
    if (exit.spawnError !== undefined) {
      const message = oneLine(`Agent "${name}" could not start ${this.file}: ${exit.spawnError.message}`)
      return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message, retryable: false } }
    }
    if (state.rateLimitedUntil !== undefined && (state.error !== undefined || exit.exitCode !== 0 || !state.done)) {
      const why = state.error === undefined ? '' : `: ${state.error}`
      const message = `Agent "${name}" (${kind}) was rate-limited until ${new Date(state.rateLimitedUntil).toISOString()}${why}`
      return { ok: false, error: { code: 'ERR_RATE_LIMITED', message: oneLine(message), rateLimitedUntil: state.rateLimitedUntil } }
    }
    if (state.permissionDenials.length > 0) {
      const denied = state.permissionDenials
      const list = denied.slice(0, 10).join('; ') + (denied.length > 10 ? `; … ${denied.length - 10} more` : '')
      const message =
        `Agent "${name}" (${kind}, permissions: ${this.permission}) was refused ` +
        `${denied.length} tool call${denied.length === 1 ? '' : 's'}: ${list}. ` +
        `Raise \`agents.${name}.permissions\` (read-only | edit | full) if the agent should do this`
      return { ok: false, error: { code: 'ERR_PERMISSION_DENIED', message: oneLine(message), retryable: false } }
    }
    if (state.error !== undefined) {
      const message = oneLine(`Agent "${name}" (${kind}) reported an error: ${state.error}`)
      return { ok: false, error: { code: 'ERR_TASK_FAILED', message } }
    }
    if (exit.exitCode !== 0) {
      return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message: oneLine(exitFailure(name, exit, this.#stderr)) } }
    }
    if (!state.done) {
      const message = oneLine(`Agent "${name}" (${kind}) exited without a final result event; stdout tail: ${tails.stdout.slice(-1000)}`)
      return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message } }
    }
    return {
      ok: true,
      output: {
        text: state.text,
        sessionId: state.sessionId,
        usage: { inputTokens: state.inputTokens, outputTokens: state.outputTokens, costUsd: state.costUsd },
        turns: state.turns,
        ...(state.model === undefined ? {} : { model: state.model }),
        ...(state.sessionTotals === undefined ? {} : { sessionTotals: state.sessionTotals }),
      },
    }
  }
}

/** Two reports of one model added up. */
function sumOf(a: UsageReport, b: UsageReport): UsageReport {
  const sum = (key: 'costUsd' | 'tokens' | 'apiCalls') => (a[key] ?? 0) + (b[key] ?? 0)
  return { costUsd: sum('costUsd'), tokens: sum('tokens'), apiCalls: sum('apiCalls'), ...(b.model === undefined ? {} : { model: b.model }) }
}

/** USD of one call at `price` (cached input at its own price, else the input price). */
export function callCost(price: ModelPrice, inputTokens: number, cachedInputTokens: number, outputTokens: number): number {
  const cachedPrice = price.cachedInputUsdPerMTok ?? price.inputUsdPerMTok
  return (inputTokens * price.inputUsdPerMTok + cachedInputTokens * cachedPrice + outputTokens * price.outputUsdPerMTok) / 1e6
}

/** An error message on one line: terminal escapes and controls removed, line breaks as ` | `, at most 4000 characters. */
export function oneLine(text: string): string {
  const line = stripVTControlCharacters(text)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, '')
    .replace(/:[ \t]*(?:\r?\n)+/g, ': ')
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join(' | ')
  return line.length > 4000 ? `${line.slice(0, 3999)}…` : line
}

/** A number field of a loosely typed event, or 0. */
export function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0
}

/** An object field of a loosely typed event, or an empty object. */
export function obj(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

/** A short one-line preview for the log. */
export function preview(value: unknown, max = 200): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '')
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max)}…` : line
}
