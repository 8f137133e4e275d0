import type { ModelPrice } from '../../core/config.ts'
import type { AttemptListener, AttemptRequest, AttemptResult } from '../executor.ts'
import type { TemplateScope } from '../../plan/templates.ts'
import type { GroupExit } from './process-group.ts'

/**
 * What one kind of process agent adds to the shared process machinery: its argv, how it
 * reads its stdout and stderr lines, and how the exit becomes a result. One driver per
 * attempt (it may keep state while the stream runs).
 */
export interface ProcessDriver {
  readonly file: string
  readonly args: readonly string[]
  /** Written to the process's stdin (a CLI's prompt); else stdin is /dev/null. */
  readonly stdin?: string
  /** Longest stdout line kept whole (event-stream drivers need long ones). */
  readonly maxLine: number
  onStdoutLine(line: string, droppedChars: number): void
  onStderrLine(line: string): void
  /** The attempt's result once the group is gone (resources are added by the executor). */
  finish(exit: GroupExit, tails: { readonly stdout: string; readonly stderr: string }): AttemptResult
  /**
   * Spend the driver holds back for the result (`CliEvents.finalUsage`): the executor adds it to
   * a result it makes itself (the attempt was stopped, or over its memory cap), so it still counts.
   */
  lateUsage?(): AttemptResult['usage']
}

export interface DriverContext {
  readonly request: AttemptRequest
  readonly listener: AttemptListener
  readonly scope: TemplateScope
  /** `config.prices`: by agent name and by model name. */
  readonly prices: Readonly<Record<string, ModelPrice>>
  /** Sends one line to `listener.onLog`, cut to the log line bound. */
  readonly log: (line: string) => void
  /** Arguments that hand a CLI the run's MCP server (before the agent's own `args`). */
  readonly mcpArgs?: readonly string[]
}

/** `[… N characters cut]` after a line that was too long. */
export function cutMarker(droppedChars: number): string {
  return droppedChars > 0 ? ` [… ${droppedChars} characters cut]` : ''
}

/** The failure message for a process that exited badly: code or signal, and its stderr tail. */
export function exitFailure(agentName: string, exit: GroupExit, stderrTail: string): string {
  const how = exit.signal !== undefined ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
  const tail = stderrTail.trimEnd()
  return `Agent "${agentName}" ${how}${tail.length > 0 ? `; stderr:\n${tail.length > 2000 ? `…${tail.slice(-2000)}` : tail}` : ' (no stderr)'}`
}
