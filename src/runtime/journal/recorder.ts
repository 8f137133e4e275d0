import type { ApprovalEvent } from '../report/events.ts'
import type { RepairRecord, RunResult, TaskResult } from '../report/result.ts'
import type { CompiledTask } from '../plan/plan.ts'

/** Hooks for the journal: what a run reports as it goes, and what it can reuse. */
export interface RunRecorder {
  /** Tasks completed by an earlier run with this id, by index. */
  readonly reused: ReadonlyMap<number, { readonly output: unknown; readonly attempts: number; readonly repairs?: readonly RepairRecord[] }>
  /** Tasks (by index) an earlier run with this id approved before their start and that have not completed: not held again. */
  readonly approved?: ReadonlySet<number>
  taskEnded(task: CompiledTask, result: TaskResult): void
  /** Tasks were added to the run (by `parent`, or by `Run.addTasks`): a resumed run re-creates them. */
  tasksAdded(parent: string | undefined, tasks: readonly CompiledTask[]): void
  runEnded(result: RunResult): Promise<void> | void
  /** A task's approve gate held it, or it was approved or rejected: a resumed run knows (docs/plans.md#approval-gates). */
  approval?(record: ApprovalRecord): void
}

/** A journaled approval step, by task id. */
export type ApprovalRecord = Omit<ApprovalEvent, 'runId' | 'taskId'> & { readonly task: string; readonly request?: string }
