/**
 * The executor seam: how a run hands one attempt of one task to whatever executes it —
 * a worker thread (module agents), an OS process group (command and CLI agents), an HTTP
 * call (LLM agents), or a remote worker (the Redis backend). The run knows only this
 * interface; each implementation lives in its own folder under `execution/`.
 */
import type { ClaimResult } from '../admission/gate.ts'
import type { InboxPage, Message } from '../coordination/mailbox.ts'
import type { Note, NotePage } from '../coordination/scratchpad.ts'
import type { UsageReport } from '../admission/usage.ts'
import type { TaskState } from '../core/task-state.ts'
import type { ErrorCode, SerializedError } from '../core/errors.ts'
import type { AgentSpec } from '../plan/agent-spec.ts'
import type { RepairReason, RepairRecord } from '../plan/repair-spec.ts'
import type { TemplateScope } from '../plan/templates.ts'

/** One attempt of one task, as the run hands it over. Structured-clone-able. */
export interface AttemptRequest {
  readonly runId: string
  readonly taskId: string
  /** 1-based. */
  readonly attempt: number
  readonly agent: AgentSpec
  readonly input: unknown
  /** Outputs of the task's direct dependencies, by task id. */
  readonly dependencies: Readonly<Record<string, unknown>>
  /** The model configured for this agent (`config.models`), if any. */
  readonly model: string | undefined
  /** The attempt's deadline budget; the run enforces it and aborts, executors may use it for their own clients. */
  readonly timeoutMs: number
  /** After abort: time an agent gets to stop on its own before it is killed. */
  readonly graceMs: number
  /** The plan's directory: the default cwd of process agents without a workspace. */
  readonly baseDir: string
  /** The run's directory (`.troupe/<runId>`), for per-attempt logs; absent when the journal is off. */
  readonly runDir: string | undefined
  /** The task's git worktree, when it has one (`ctx.workspace`, `{{workspace}}`). */
  readonly workspace: string | undefined
  /** First port of the task's range (`ctx.port`, `{{port}}`), when it has a workspace. */
  readonly port: number | undefined
  /** Set when this run of the agent repairs the attempt's work (docs/workspaces.md "Repair"). */
  readonly repair?: AttemptRepair
}

/** A repair: the agent runs again in the same worktree, told what failed. */
export interface AttemptRepair {
  /** 1 for the attempt's first repair. */
  readonly number: number
  readonly reason: RepairReason
  /** The failure: verify or check output's tail, or the conflicting files and hunks. */
  readonly detail: string
  /** What the agent is asked, the failure included (a CLI's prompt). */
  readonly prompt: string
  /** The CLI session of the run before, resumed where the CLI can. */
  readonly sessionId?: string
  /** What the CLI reported for that session so far (`output.sessionTotals`): the repair takes it off what it reports again. */
  readonly sessionTotals?: SessionTotals
}

/**
 * What a CLI reported for a session since its start, where its reports on a resumed session
 * span every run of it: Codex's tokens, Claude Code's cost.
 */
export interface SessionTotals {
  /** Input tokens not read from a prompt cache. */
  readonly inputTokens?: number
  readonly cachedInputTokens?: number
  readonly outputTokens?: number
  readonly costUsd?: number
}

/** Why an attempt failed. */
export interface AttemptError extends SerializedError {
  readonly code: ErrorCode
  /** `false` when another attempt cannot help (bad agent, uncloneable output). */
  readonly retryable?: boolean
  /**
   * The provider rate-limited this attempt (HTTP 429, a CLI's rate-limit event): epoch ms
   * when it may try again. The run pauses the limits the task `uses` until then and puts
   * the attempt back in the queue without counting it as a failure.
   */
  readonly rateLimitedUntil?: number
}

/** `worker` on a result: where the attempt ran, when not this process (a `troupe worker`'s name). */

/** What an attempt really used, measured by its executor (for the governor's per-agent demand). */
export interface AttemptResources {
  /** CPU time in ms: the worker thread's, or the whole process tree's for process agents. */
  readonly cpuMs: number
  /** Peak resident memory in MB, where the executor can measure it (process agents: the group's RSS). */
  readonly peakRssMb?: number
  /** Wall time the measurement covers, ms, when it is shorter than the attempt as the run sees it (a thread's start-up excluded). */
  readonly wallMs?: number
}

/**
 * `cached` on a success: the output came from the task cache; the agent did not run.
 *
 * `usage` on a result: spend reported together with the outcome (a CLI's final totals), one
 * report or several (one per model). The run records the outcome first and counts this after,
 * so a completed task whose final spend crosses the budget keeps its output.
 */
export type AttemptResult = (
  | { readonly ok: true; readonly output: unknown; readonly cached?: true }
  | { readonly ok: false; readonly error: AttemptError }
) & {
  readonly resources?: AttemptResources
  readonly worker?: string
  readonly usage?: UsageReport | readonly UsageReport[]
  /** The repairs the attempt went through, in order (worktree tasks with `repair`). */
  readonly repairs?: readonly RepairRecord[]
}

/** A result's `usage` as a list: none, one report, or one per model. */
export function usageReports(usage: AttemptResult['usage']): readonly UsageReport[] {
  return usage === undefined ? [] : [usage].flat()
}

/** What an attempt reports while it runs (through `ctx`, a process's output, an API stream). */
export interface AttemptListener {
  onProgress(fraction: number, message: string | undefined): void
  onLog(message: string): void
  /** `ctx.acquire(name)`: resolves with the release function once a unit is held; `signal` aborts when the attempt ends. */
  onAcquire(name: string, signal: AbortSignal): Promise<() => void>
  /** Spend (tokens, cost, calls) for `RunResult.usage` and the budget. */
  onUsage(report: UsageReport): void
  /**
   * The provider rate-limited a call the agent retries by itself (a CLI's own retry): the run
   * pauses the limits the task `uses` until `until`, and the attempt goes on.
   */
  onRateLimited?(until: number, message: string): void
  /** `ctx.claim(path)`: answers at once (a remote worker's, once the coordinator answered). */
  onClaim(path: string): ClaimResult | Promise<ClaimResult>
  /** `ctx.release(path)`. */
  onRelease(path: string): void
  /**
   * `ctx.spawn(tasks, { wait })`, the `add_tasks` tool: adds tasks to the run. Without `wait`
   * it answers once they are added; with it, once they have all ended (the attempt gives its
   * slot back meanwhile), with their outputs by id. Never rejects: a refusal is an answer.
   */
  onSpawn(tasks: unknown, options: { readonly wait: boolean }): Promise<SpawnAnswer>
  /**
   * The `wait_tasks` tool (and `add_tasks` with `wait`): waits for tasks the attempt's task added
   * (or their descendants), giving its slot back meanwhile, until they have all ended or
   * `timeoutMs` ran out; answers each task's state, output and error. Never rejects. Absent
   * where the run cannot wait for an attempt (on a remote worker: a call to the coordinator).
   */
  onWaitTasks?(request: WaitTasksRequest): Promise<WaitTasksAnswer>
  /**
   * Set for a task with `approve: { before: "merge" }`: the workspace calls it once the attempt
   * succeeded, before merging, and merges only if it resolves `true` (the attempt holds no
   * slot and its timeout does not tick meanwhile). `false`: rejected or aborted, not merged.
   */
  awaitApproval?(review: MergeReview): Promise<boolean>
  /**
   * Whether a repair (docs/workspaces.md "Repair") may start now: undefined if so, else why not
   * (the run is stopping, its budget is spent). A repair is new work, admitted like an attempt.
   */
  mayRepair?(): string | undefined
  /**
   * The run's scratchpad (`ctx.scratchpad`, the `scratchpad_*` tools), once it is open; absent
   * where the run keeps none for its attempts (on a remote worker: calls to the coordinator's).
   */
  scratchpad?(): ScratchpadAccess | undefined
  /** The run's messages between tasks (`send_message`, `read_messages`), once open; absent likewise. */
  mailbox?(): MailboxAccess | undefined
}

/**
 * The run's scratchpad as an attempt reaches it: the run's own (coordination/scratchpad.ts),
 * or, on a remote worker, calls to the coordinator's (which notes them as the attempt's task,
 * whatever `taskId` says).
 */
export interface ScratchpadAccess {
  read(): readonly Note[] | Promise<readonly Note[]>
  page(since: number, limit: number): NotePage | Promise<NotePage>
  append(taskId: string, text: string): Promise<Note>
}

/** The run's mailbox as an attempt reaches it (coordination/mailbox.ts, or a remote worker's calls to it). */
export interface MailboxAccess {
  send(from: string, to: string, text: string): Promise<Message>
  inbox(to: string, since?: number, limit?: number): InboxPage | Promise<InboxPage>
}

/** What a person approving a merge looks at: the task's worktree, its branch and the attempt's output. */
export interface MergeReview {
  readonly workspace: string
  readonly branch: string
  readonly output?: unknown
}

/** What `wait_tasks` / `add_tasks` with `wait` asks. */
export interface WaitTasksRequest {
  /** Tasks to add first (`add_tasks` with `wait`), as `ctx.spawn` takes them. */
  readonly add?: unknown
  /** Ids of tasks to wait for (`wait_tasks`). */
  readonly ids?: readonly string[]
  readonly timeoutMs: number
}

/** One waited-for task, as `wait_tasks` reports it. */
export interface WaitedTask {
  readonly state: TaskState
  /** A completed task's output. */
  readonly output?: unknown
  readonly error?: { readonly code: ErrorCode; readonly message: string }
}

/** What `wait_tasks` / `add_tasks` with `wait` answers. */
export type WaitTasksAnswer =
  | {
      readonly ok: true
      /** Ids added by the call (`add_tasks` with `wait`). */
      readonly added?: readonly string[]
      /** True when the timeout ran out before every task ended (the others are still PENDING, QUEUED, RUNNING or WAITING). */
      readonly timedOut: boolean
      readonly tasks: Readonly<Record<string, WaitedTask>>
    }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } }

/** What `ctx.spawn` / `add_tasks` answers. */
export type SpawnAnswer =
  | {
      readonly ok: true
      /** Ids of the tasks of the call, in the order given. */
      readonly added: readonly string[]
      /** With `wait`: each completed task's output by id (a task skipped by its condition has none). */
      readonly outputs?: Readonly<Record<string, unknown>>
    }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } }

/** One attempt in flight. */
export interface AttemptHandle {
  /** Settles when the attempt finished, failed or was stopped; never rejects. */
  readonly result: Promise<AttemptResult>
  /**
   * Stops the attempt: cooperatively first (ctx.signal, SIGTERM to the process group),
   * then for good after `graceMs` (thread terminated, SIGKILL to the group).
   */
  abort(): void
}

/** Runs attempts. One per runtime (the local one routes by agent kind). */
export interface Executor {
  /** Where attempts run, for `RunResult.tasks[id].worker` (`local` for this machine). */
  readonly name: string
  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle
  /** Waits for attempts in flight (or with `force` stops them) and frees what the executor holds. */
  close(force?: boolean): Promise<void>
}

/** What an attempt's templates (`{{input.*}}`, `{{deps.*}}`, `{{workspace}}` …) are rendered against. */
export function templateScopeOf(request: AttemptRequest): TemplateScope {
  return {
    input: request.input,
    deps: new Map(Object.entries(request.dependencies)),
    taskId: request.taskId,
    runId: request.runId,
    attempt: request.attempt,
    workspace: request.workspace,
    port: request.port,
  }
}
