import type { CliAgentSpec, CliPermission } from '../../plan/agent-spec.ts'
import { renderString } from '../../plan/templates.ts'
import type { AttemptResult } from '../executor.ts'
import type { GroupExit } from './process-group.ts'
import { cutMarker, exitFailure, type DriverContext, type ProcessDriver } from './process-driver.ts'

/** What a CLI's event stream has told so far; filled by its parser. */
export interface StreamState {
  text: string
  sessionId: string | undefined
  turns: number
  inputTokens: number
  outputTokens: number
  costUsd: number
  /** The stream ended with a result (Claude, Gemini) or a completed turn (Codex). */
  done: boolean
  /** A result or error event said the run failed. */
  error: string | undefined
  /** A rate-limit event said "rejected until": epoch ms. */
  rateLimitedUntil: number | undefined
  /** Tool calls the CLI refused under its permissions (tool names or short descriptions). */
  permissionDenials: string[]
}

export interface CliEvents {
  /**
   * Spend as the CLI reports it; cost computed from `config.prices` when the CLI gives tokens only.
   * `model`: the model the CLI says answered (default: the agent's configured model).
   */
  usage(inputTokens: number, outputTokens: number, costUsd: number | undefined, model?: string): void
  /** A line for the live view (assistant text, a tool call). */
  log(line: string): void
  /** A turn (one model call and its tool calls) finished. */
  turn(message: string | undefined): void
}

/** One CLI's headless interface: argv (the prompt goes to stdin) and how one stream event updates the state. */
export interface CliParser {
  argv(model: string | undefined, extra: readonly string[], permission: CliPermission): string[]
  /** The CLI's own flags for a `permissions` level. */
  permissionArgs(permission: CliPermission): string[]
  onEvent(event: Record<string, unknown>, state: StreamState, events: CliEvents): void
  /** A stderr line that is the CLI's known chatter (banners, warnings, retry stack traces): logged, kept out of errors. */
  isNoise?(line: string): boolean
}

/** Pause used when a CLI reports a rate limit without a reset time. */
export const DEFAULT_RATE_LIMIT_PAUSE_MS = 60_000

/**
 * A coding-agent CLI in headless mode: a JSONL event stream on stdout. Lines that are not
 * JSON objects (banners, warnings) go to the log. Errors: a failure the CLI reports in its
 * stream is ERR_TASK_FAILED (the agent ran and gave up: max turns, a tool error); a process
 * that exits non-zero without such a report is ERR_COMMAND_FAILED; a rate limit fails with
 * `rateLimitedUntil`, so the run pauses the task's limits and re-queues it.
 */
export class CliDriver implements ProcessDriver {
  readonly file: string
  readonly args: readonly string[]
  /** Event lines carry whole assistant messages and tool outputs: keep them whole up to here. */
  readonly maxLine = 32 * 1024 * 1024
  readonly #spec: CliAgentSpec
  readonly #context: DriverContext
  readonly #parser: CliParser
  readonly #model: string | undefined
  readonly #maxTurns: number | undefined
  readonly #state: StreamState = { text: '', sessionId: undefined, turns: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, done: false, error: undefined, rateLimitedUntil: undefined, permissionDenials: [] }
  /** The prompt, written to the CLI's stdin: as an argv element it could be parsed as options or overflow argv. */
  readonly stdin: string
  readonly #events: CliEvents

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
    const extra = spec.args.map((arg, i) => renderString(arg, context.scope, `agents.${spec.name}.args[${i}]`))
    const maxTurnsAt = extra.indexOf('--max-turns')
    const maxTurns = maxTurnsAt === -1 ? NaN : Number(extra[maxTurnsAt + 1])
    this.#maxTurns = Number.isInteger(maxTurns) && maxTurns > 0 ? maxTurns : undefined
    this.file = spec.executable
    this.stdin = prompt
    this.args = parser.argv(this.#model, [...(context.mcpArgs ?? []), ...extra], spec.permissions ?? 'edit')
    const listener = context.listener
    this.#events = {
      usage: (inputTokens, outputTokens, costUsd, reported) => {
        const model = reported ?? this.#model
        const price = context.prices[spec.name] ?? (model === undefined ? undefined : context.prices[model])
        const cost = costUsd ?? (price === undefined ? 0 : (inputTokens * price.inputUsdPerMTok + outputTokens * price.outputUsdPerMTok) / 1e6)
        this.#state.inputTokens += inputTokens
        this.#state.outputTokens += outputTokens
        this.#state.costUsd += cost
        listener.onUsage({ costUsd: cost, tokens: inputTokens + outputTokens, apiCalls: 1, ...(model === undefined ? {} : { model }) })
      },
      log: (line) => context.log(line),
      turn: (message) => {
        this.#state.turns++
        // Progress is known only against a turn budget (`--max-turns` in args).
        if (this.#maxTurns !== undefined) listener.onProgress(Math.min(0.99, this.#state.turns / this.#maxTurns), message ?? `turn ${this.#state.turns}`)
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
  }

  finish(exit: GroupExit, tails: { readonly stdout: string; readonly stderr: string }): AttemptResult {
    const name = this.#spec.name
    const state = this.#state
    if (exit.spawnError !== undefined) {
      return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message: `Agent "${name}" could not start ${this.file}: ${exit.spawnError.message}`, retryable: false } }
    }
    if (state.rateLimitedUntil !== undefined && (state.error !== undefined || exit.exitCode !== 0 || !state.done)) {
      const message = `Agent "${name}" (${this.#spec.kind}) was rate-limited until ${new Date(state.rateLimitedUntil).toISOString()}${state.error === undefined ? '' : `: ${state.error}`}`
      return { ok: false, error: { code: 'ERR_RATE_LIMITED', message, rateLimitedUntil: state.rateLimitedUntil } }
    }
    if (state.error !== undefined) return { ok: false, error: { code: 'ERR_TASK_FAILED', message: `Agent "${name}" (${this.#spec.kind}) reported an error: ${state.error}` } }
    if (exit.exitCode !== 0) return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message: exitFailure(name, exit, this.#withoutNoise(tails.stderr)) } }
    if (!state.done) return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message: `Agent "${name}" (${this.#spec.kind}) exited without a final result event; stdout tail:\n${tails.stdout.slice(-1000)}` } }
    return {
      ok: true,
      output: {
        text: state.text,
        sessionId: state.sessionId,
        usage: { inputTokens: state.inputTokens, outputTokens: state.outputTokens, costUsd: state.costUsd },
        turns: state.turns,
      },
    }
  }

  #withoutNoise(stderr: string): string {
    const isNoise = this.#parser.isNoise
    return isNoise === undefined ? stderr : stderr.split('\n').filter((line) => !isNoise(line)).join('\n')
  }
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
