import { INPUT_ERROR_CODES, isTroupeError } from '../runtime/core/errors.ts'
import { terminalText } from './terminal-text.ts'

/** Exit codes of the CLI (docs/cli.md "Exit codes"). */
export const EXIT = {
  /** Every task COMPLETED. */
  ok: 0,
  /** Some task did not complete (any task error: ERR_TASK_FAILED, ERR_PERMISSION_DENIED, ERR_RATE_LIMITED, …). */
  incomplete: 1,
  /** Invalid input: plan, config or arguments. */
  invalidInput: 2,
  /** The run paused at its budget (`onExceeded: pause`): resume it with a larger budget.maxCostUsd. */
  paused: 3,
  /** Interrupted (SIGINT / SIGTERM). */
  interrupted: 130,
} as const

/**
 * Prints a one-paragraph message for an error and returns the exit code it maps to.
 * Messages quote plan and agent text, so they are made safe for the terminal.
 */
export function reportError(error: unknown): number {
  if (isTroupeError(error) && INPUT_ERROR_CODES.has(error.code)) {
    process.stderr.write(`troupe: ${terminalText(error.message, 4000, { multiline: true })} [${error.code}]\n`)
    return EXIT.invalidInput
  }
  if (isTroupeError(error)) {
    process.stderr.write(`troupe: ${terminalText(error.message, 4000, { multiline: true })} [${error.code}]\n`)
    return EXIT.incomplete
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error)
  process.stderr.write(`troupe: unexpected error: ${terminalText(text, 8000, { multiline: true })}\n`)
  return EXIT.incomplete
}
