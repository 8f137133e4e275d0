/**
 * The typed protocol between the main thread and worker threads. Type-only: the worker
 * entry imports nothing from the runtime at run time, so threads start fast.
 */
import type { ClaimResult } from '../../admission/gate.ts'
import type { ErrorCode } from '../../core/errors.ts'
import type { UsageReport } from '../../admission/usage.ts'

/** One attempt of one task, as posted to a worker. */
export interface WorkerTask {
  /** Names the attempt in `ctx` calls between threads (unique per pool). */
  readonly id: AttemptKey
  readonly moduleUrl: string
  readonly input: unknown
  readonly runId: string
  readonly taskId: string
  readonly attempt: number
  readonly dependencies: Readonly<Record<string, unknown>>
  readonly model: string | undefined
  /** The task's git worktree (`ctx.workspace`), when it has one. */
  readonly workspace?: string
  /** First port of the task's block (`ctx.port`), when it has a worktree. */
  readonly port?: number
  /** `ctx.repair`: set when this run of the agent repairs its attempt's work. */
  readonly repair?: RepairContext
  /** Post a {@link PROBE_MESSAGE} once the agent has run for PROBE_MS (the pool learns whether it waits). */
  readonly probe?: true
  /** The attempt shares its thread: post a {@link THREAD_MESSAGE} as it starts. */
  readonly shared?: true
}

/** `ctx.repair` (docs/workspaces.md "Repair"): the agent runs again in its worktree to fix what failed. */
export interface RepairContext {
  /** 1 for the attempt's first repair. */
  readonly number: number
  readonly reason: 'verify' | 'conflict' | 'check'
  /** The verify or check output's tail, or the conflicting files and hunks. */
  readonly detail: string
}

export interface WorkerError {
  readonly code: ErrorCode
  readonly message: string
  readonly cause?: { readonly name: string; readonly message: string; readonly stack?: string }
  readonly retryable?: boolean
}

export type WorkerResult =
  | { readonly ok: true; readonly output: unknown; readonly resources?: WorkerResources }
  | { readonly ok: false; readonly error: WorkerError; readonly resources?: WorkerResources }

/** What the attempt's thread measured: its event loop's active time over the attempt, ms. */
export interface WorkerResources {
  readonly cpuMs: number
  /** The attempt's wall time inside the thread, ms. */
  readonly wallMs: number
}

/**
 * Identifies one attempt in messages between threads: a number the pool hands out, so that
 * neither side builds a string key per task.
 */
export type AttemptKey = number

/**
 * What a worker can call on the main thread (through comlink, over one MessagePort per
 * worker thread, opened the first time an agent uses `ctx`).
 */
export interface HostApi {
  progress(key: AttemptKey, fraction: number, message: string | undefined): void
  log(key: AttemptKey, message: string): void
  /** The agent is watching `ctx.signal`: send it an abort message before terminating. */
  watchAbort(key: AttemptKey): void
  /** `ctx.acquire(name)`: resolves with a lease id once one unit of limit `name` is held. */
  acquire(key: AttemptKey, name: string): Promise<number>
  /** Gives back a lease from {@link acquire}. Leases left at the attempt's end are given back then. */
  releaseLease(key: AttemptKey, lease: number): void
  /** `ctx.usage(report)`: spend to add to the run's usage and budget. */
  usage(key: AttemptKey, report: UsageReport): void
  /** `ctx.claim(path)`: answers at once, never waits for the claim to be free. */
  claim(key: AttemptKey, path: string): ClaimResult | Promise<ClaimResult>
  /** `ctx.release(path)`: gives back one hold on `path`. */
  release(key: AttemptKey, path: string): void
  /** `ctx.scratchpad.read()`: every note of the run's scratchpad, oldest first. */
  scratchpadRead(key: AttemptKey): readonly ScratchpadNote[] | Promise<readonly ScratchpadNote[]>
  /** `ctx.scratchpad.append(text)`: resolves with the note once it is journaled. */
  scratchpadAppend(key: AttemptKey, text: string): Promise<ScratchpadNote>
  /**
   * `ctx.spawn(tasks, { wait })`: adds tasks to the run; with `wait`, answers once they have
   * all ended (the attempt gives its slot back meanwhile). A refusal is an answer, not a throw
   * (comlink would drop the error code).
   */
  spawn(key: AttemptKey, tasks: unknown, wait: boolean): Promise<SpawnReply>
  /** `ctx.exec(command, args, options)`: runs a process group tied to the attempt. */
  exec(key: AttemptKey, command: string, args: readonly string[], options: ExecOptions): Promise<ExecResult>
}

/** What `spawn` answers (the executor seam's SpawnAnswer). */
export type SpawnReply =
  | { readonly ok: true; readonly added: readonly string[]; readonly outputs?: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } }

/** `ctx.exec` options. */
export interface ExecOptions {
  /** Default: the task's workspace, else the plan's directory. */
  readonly cwd?: string
  /** Added to the environment of this process. */
  readonly env?: Readonly<Record<string, string>>
}

/** What `ctx.exec` resolves with: the exit and the (bounded) tails of stdout and stderr. */
export interface ExecResult {
  /** null when the process was killed by a signal. */
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

/** One note of a run's scratchpad (the same shape as coordination's Note). */
export interface ScratchpadNote {
  readonly taskId: string
  /** Epoch ms. */
  readonly at: number
  readonly text: string
}

export type { ClaimResult }

/** Tag of the message a worker posts on its parentPort to hand the main thread its ctx port. */
export const CTX_PORT_MESSAGE = 'troupe:ctx-port'
/**
 * Tag of the message a worker posts on its parentPort PROBE_MS into a probed attempt:
 * `{ type, key, utilization }`, its event loop's utilisation since the agent was called.
 */
export const PROBE_MESSAGE = 'troupe:probe'
/**
 * How long into a probed attempt its thread reports (see thread-use.ts); also the shortest
 * attempt whose whole run tells. Long enough that a timer or two of an agent that waits do
 * not look like work, short enough that a wide fan-out of such agents shares threads from
 * its first wave.
 */
export const PROBE_MS = 10
/**
 * Tag of the message a worker posts on its parentPort as a shared attempt starts:
 * `{ type, key, threadId }`, so that the pool can end a thread left running only abandoned code.
 */
export const THREAD_MESSAGE = 'troupe:thread'
/** Tag of the abort message the main thread posts on a worker's ctx port. */
export const ABORT_MESSAGE = 'troupe:abort'

/** Why an agent module cannot load, as found by the worker entry's `checkAgents`. */
export interface AgentLoadProblem {
  readonly moduleUrl: string
  /** e.g. `SyntaxError: Unexpected end of input`, `the module's default export is a number, …` */
  readonly message: string
  /** For a syntax error: `path:line:column`. */
  readonly location?: string
}

/** Named exports of the worker entry besides the default one (piscina's `name` option). */
export const CHECK_AGENTS_EXPORT = 'checkAgents'
export const WARM_EXPORT = 'warm'
/**
 * What crosses the thread boundary of an error an agent threw (or a worker died of): its
 * name, message and stack. A thrown non-Error is kept as its string form.
 */
export function errorCause(error: unknown): NonNullable<WorkerError['cause']> {
  if (error instanceof Error) return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) }
  return { name: 'NonError', message: String(error) }
}
