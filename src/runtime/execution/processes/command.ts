import type { CommandAgentSpec } from '../../plan/agent-spec.ts'
import { renderShellTemplate } from '../../plan/shell-template.ts'
import { renderString } from '../../plan/templates.ts'
import type { AttemptResult } from '../executor.ts'
import type { GroupExit } from './process-group.ts'
import { cutMarker, exitFailure, type DriverContext, type ProcessDriver } from './process-driver.ts'

/** Largest stdout parsed for `output: json` (the whole stdout must be kept for it). */
const MAX_JSON_STDOUT = 16 * 1024 * 1024
/** `::progress 0.5 optional message` on stdout reports progress. */
const PROGRESS = /^::progress\s+([0-9]*\.?[0-9]+)(?:\s+(.*))?$/

/**
 * A `command` agent: argv without a shell (each template renders into its own argument), or one
 * string through `/bin/sh -c` (each value pasted as one shell-quoted word); rendered for this
 * attempt. Output `{ exitCode, stdout, stderr, json? }` with bounded tails.
 */
export class CommandDriver implements ProcessDriver {
  readonly file: string
  readonly args: readonly string[]
  readonly maxLine = 64 * 1024
  readonly #spec: CommandAgentSpec
  readonly #context: DriverContext
  #json = ''
  #jsonTooLarge = false
  #lastLine: string | undefined

  constructor(spec: CommandAgentSpec, context: DriverContext) {
    this.#spec = spec
    this.#context = context
    const field = `agents.${spec.name}.run`
    if (typeof spec.run === 'string') {
      this.file = '/bin/sh'
      this.args = ['-c', renderShellTemplate(spec.run, context.scope, field)]
    } else {
      this.file = spec.executable
      this.args = spec.run.slice(1).map((arg, i) => renderString(arg, context.scope, `${field}[${i + 1}]`))
    }
  }

  onStdoutLine(line: string, droppedChars: number): void {
    const progress = PROGRESS.exec(line)
    if (progress !== null) {
      this.#context.listener.onProgress(Number(progress[1]), progress[2])
      return
    }
    if (this.#spec.output === 'json' && !this.#jsonTooLarge) {
      if (droppedChars > 0 || this.#json.length + line.length > MAX_JSON_STDOUT) this.#jsonTooLarge = true
      else this.#json += `${line}\n`
    }
    if (line.trim().length > 0) this.#lastLine = droppedChars > 0 ? undefined : line
    this.#context.log(line + cutMarker(droppedChars))
  }

  onStderrLine(line: string): void {
    this.#context.log(line)
  }

  finish(exit: GroupExit, tails: { readonly stdout: string; readonly stderr: string }): AttemptResult {
    const name = this.#spec.name
    if (exit.spawnError !== undefined) {
      return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message: `Agent "${name}" could not start ${this.file}: ${exit.spawnError.message}`, retryable: false } }
    }
    if (exit.exitCode !== 0) return { ok: false, error: { code: 'ERR_COMMAND_FAILED', message: exitFailure(name, exit, tails.stderr) } }
    const output: Record<string, unknown> = { exitCode: 0, stdout: tails.stdout, stderr: tails.stderr }
    if (this.#spec.output === 'text') return { ok: true, output }
    const fail = (why: string): AttemptResult => ({ ok: false, error: { code: 'ERR_COMMAND_FAILED', message: `Agent "${name}" has output: ${this.#spec.output}, but ${why}`, retryable: false } })
    if (this.#spec.output === 'json') {
      if (this.#jsonTooLarge) return fail(`its stdout is larger than ${MAX_JSON_STDOUT} bytes`)
      try {
        output.json = JSON.parse(this.#json)
      } catch (error) {
        return fail(`its stdout is not JSON (${(error as Error).message}): ${JSON.stringify(this.#json.slice(0, 200))}`)
      }
      return { ok: true, output }
    }
    if (this.#lastLine === undefined) return fail('it printed no line (jsonl takes the last non-empty line)')
    try {
      output.json = JSON.parse(this.#lastLine)
    } catch (error) {
      return fail(`its last line is not JSON (${(error as Error).message}): ${JSON.stringify(this.#lastLine.slice(0, 200))}`)
    }
    return { ok: true, output }
  }
}
