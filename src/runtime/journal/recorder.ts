import type { RepairRecord, RunResult, TaskResult } from '../core/result.ts'
import type { CompiledTask } from '../plan/plan.ts'

/** Hooks for the journal: what a run reports as it goes, and what it can reuse. */
export interface RunRecorder {
  /** Tasks completed by an earlier run with this id, by index. */
  readonly reused: ReadonlyMap<number, { readonly output: unknown; readonly attempts: number; readonly repairs?: readonly RepairRecord[] }>
  taskEnded(task: CompiledTask, result: TaskResult): void
  /** Tasks were added to the run (by `parent`, or by `Run.addTasks`): a resumed run re-creates them. */
  tasksAdded(parent: string | undefined, tasks: readonly CompiledTask[]): void
  runEnded(result: RunResult): Promise<void> | void
}
