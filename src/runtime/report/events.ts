import type { TaskState } from '../core/task-state.ts'
import type { SerializedError } from '../core/errors.ts'
import type { RunResult } from './result.ts'
import type { TaskSpec } from '../plan/plan.ts'
import type { GovernorEvent, GovernorSampleEvent } from '../governor/governor.ts'
import type { RepairRecord } from '../plan/repair-spec.ts'

export type { GovernorEvent, GovernorSampleEvent }

export interface TaskStateEvent {
  readonly runId: string
  readonly taskId: string
  readonly agent: string
  readonly state: TaskState
  readonly previous: TaskState
  /** 1-based attempt; 0 before the first. */
  readonly attempt: number
  readonly at: number
  readonly error?: SerializedError
  /** On COMPLETED: the output came from the task cache. */
  readonly cached?: true
  /** On COMPLETED and FAILED: the repairs its attempts made (docs/workspaces.md "Repair"), when any. */
  readonly repairs?: readonly RepairRecord[]
}

export interface TaskProgressEvent {
  readonly runId: string
  readonly taskId: string
  readonly attempt: number
  /** 0..1 */
  readonly fraction: number
  readonly message: string | undefined
  readonly at: number
}

export interface TaskLogEvent {
  readonly runId: string
  readonly taskId: string
  readonly attempt: number
  readonly message: string
  readonly at: number
}

export interface RunStartEvent {
  readonly runId: string
  readonly name: string
  readonly strategy: string
  readonly maxParallel: number
  readonly tasks: number
  readonly reused: number
  readonly at: number
}

export interface RunEndEvent {
  readonly runId: string
  readonly result: RunResult
}

/** The run's reported spend reached `budget.maxCostUsd`; no task starts after this. */
export interface BudgetExceededEvent {
  readonly runId: string
  readonly spentUsd: number
  readonly maxCostUsd: number
  readonly onExceeded: 'pause' | 'fail'
  /** The task whose `ctx.usage` crossed the budget. */
  readonly taskId: string
  readonly at: number
}

/** Events of a run. Listen with `run.on(name, listener)`; the runtime re-emits them all. */
/** A provider rate-limited a task: the limits it uses admit nothing until `until`. */
export interface LimitPausedEvent {
  readonly runId: string
  readonly taskId: string
  /** Names of the paused limits (`config.limits`). */
  readonly limits: readonly string[]
  /** Epoch ms when they admit again. */
  readonly until: number
  readonly at: number
}

/** A note was added to the run's scratchpad (by a module agent's `ctx.scratchpad` or a CLI agent's MCP tool). */
export interface ScratchpadNoteEvent {
  readonly runId: string
  readonly taskId: string
  /** Epoch ms. */
  readonly at: number
  readonly text: string
}

/** A task sent another a message (the `send_message` tool); the text is stored clean (no escape sequences or control characters). */
export interface TaskMessageEvent {
  readonly runId: string
  /** Position in the run's mailbox. */
  readonly seq: number
  readonly from: string
  readonly to: string
  /** Epoch ms. */
  readonly at: number
  readonly text: string
}

/** Tasks were added to the running DAG (`ctx.spawn`, the `add_tasks` tool, `Run.addTasks`): one event per task. */
export interface TaskAddedEvent extends Pick<TaskSpec, 'agent' | 'description' | 'tags'> {
  readonly runId: string
  readonly taskId: string
  /** The task that added it; absent for `Run.addTasks`. */
  readonly parent?: string
  readonly dependsOn: readonly string[]
  readonly at: number
}

/**
 * Who decided on a task awaiting approval: `Run.approve`/`reject`, a request file (`troupe approve`),
 * the dashboard, or an earlier invocation's journaled approval.
 */
export type ApprovalSource = 'library' | 'cli' | 'dashboard' | 'journal'

/** A task's approve gate: it started waiting, or was approved or rejected (docs/plans.md#approval-gates). */
export interface ApprovalEvent {
  readonly runId: string
  readonly taskId: string
  readonly state: 'awaiting' | 'approved' | 'rejected'
  /** Where the gate holds it: before its attempt starts, or before its worktree is merged. */
  readonly before: 'start' | 'merge'
  /** Who decided (absent while awaiting). */
  readonly by?: ApprovalSource
  /** A rejection's reason, sanitised (one line, no control characters, at most 2,000 characters). */
  readonly reason?: string
  readonly at: number
}

export interface RunEvents {
  'run:start': [RunStartEvent]
  'task:added': [TaskAddedEvent]
  'task:state': [TaskStateEvent]
  'task:progress': [TaskProgressEvent]
  'task:log': [TaskLogEvent]
  'task:approval': [ApprovalEvent]
  'run:end': [RunEndEvent]
  /** Emitted on every run in flight, and once on the runtime. */
  'governor:throttled': [GovernorEvent]
  'governor:resumed': [GovernorEvent]
  'budget:exceeded': [BudgetExceededEvent]
  'limit:paused': [LimitPausedEvent]
  'scratchpad:note': [ScratchpadNoteEvent]
  'task:message': [TaskMessageEvent]
}

/**
 * Calls a user listener without letting it unwind the runtime: an error is reported as a
 * process warning, and the run goes on.
 */
export function reportListenerError(error: unknown): void {
  process.emitWarning(`troupe: an event listener threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 'TroupeListenerWarning')
}
