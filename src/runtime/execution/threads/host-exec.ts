import type { ProcessOwner } from '../../journal/process-ledger.ts'
import { Tail } from '../processes/line-splitter.ts'
import type { ProcessGroup } from '../processes/process-group.ts'
import type { ExecOptions, ExecResult } from './protocol.ts'

/** Characters of stdout and of stderr kept in a `ctx.exec` result. */
export const EXEC_TAIL_CHARS = 64 * 1024

/**
 * `ctx.exec(command, args, options)` on the main thread: the process runs in its own group
 * (see ProcessGroup), added to `groups` until it exits, so the attempt's end stops it and
 * everything it started (SIGTERM, then SIGKILL after the grace period).
 */
export async function hostExec(command: string, args: readonly string[], options: ExecOptions, defaults: { readonly cwd: string; readonly graceMs: number; readonly owner?: ProcessOwner }, groups: Set<ProcessGroup>): Promise<ExecResult> {
  if (typeof command !== 'string' || command.length === 0) throw new TypeError(`ctx.exec: command must be a non-empty string, got ${JSON.stringify(command)}`)
  if (!Array.isArray(args) || args.some((arg) => typeof arg !== 'string')) throw new TypeError('ctx.exec: args must be an array of strings')
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value
  for (const [key, value] of Object.entries(options.env ?? {})) env[key] = String(value)
  const stdout = new Tail(EXEC_TAIL_CHARS)
  const stderr = new Tail(EXEC_TAIL_CHARS)
  // Loaded with the first ctx.exec: a runtime whose agents never exec loads no process library.
  const { ProcessGroup } = await import('../processes/process-group.ts')
  const group = new ProcessGroup(command, args, {
    cwd: options.cwd ?? defaults.cwd,
    env,
    graceMs: defaults.graceMs,
    ...(defaults.owner === undefined ? {} : { owner: defaults.owner }),
    onStdout: (chunk) => stdout.append(chunk.toString('utf8')),
    onStderr: (chunk) => stderr.append(chunk.toString('utf8')),
  })
  groups.add(group)
  const exit = await group.exited
  groups.delete(group)
  if (exit.spawnError !== undefined) throw new Error(`ctx.exec: could not start ${command}: ${exit.spawnError.message}`)
  return { exitCode: exit.exitCode ?? null, signal: exit.signal ?? null, stdout: stdout.toString(), stderr: stderr.toString() }
}
