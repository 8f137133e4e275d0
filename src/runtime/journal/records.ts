import type { RunResult, TaskResult } from '../report/result.ts'
import type { Strategy, TaskSpec } from '../plan/plan.ts'
import type { ApprovalRecord } from './recorder.ts'

/**
 * The records of a run's journal (`<checkpoint.dir>/<runId>/journal.jsonl`): one JSON
 * object per line, written through the codec (codec.ts).
 */
export type JournalRecord =
  | {
      readonly type: 'run-start'
      readonly runId: string
      readonly name: string
      readonly strategy: Strategy
      readonly maxParallel: number
      readonly tasks: number
      /** Tasks taken from earlier runs with this id. */
      readonly reused: number
      /** The plan's shape, for reports: each task's id, agent and dependencies (not inputs). */
      readonly plan: {
        readonly tasks: readonly (Pick<TaskSpec, 'id' | 'agent' | 'description' | 'tags'> & { readonly dependsOn: readonly string[] })[]
      }
      readonly at: number
    }
  | ({
      readonly type: 'task'
      readonly id: string
      /** Hash of the task's definition; a resumed run reuses the output only if it still matches. */
      readonly hash: string
      readonly attempt: number
      readonly at: number
      /** Set when the output could not be encoded (see codec.ts), so it cannot be reused. */
      readonly outputUnavailable?: true
    } & Omit<TaskResult, 'attempts'>)
  | {
      /** Tasks added at run time (`ctx.spawn`, `add_tasks`, `Run.addTasks`), as written: a resumed run adds them again. */
      readonly type: 'spawn'
      /** The task that added them; absent for `Run.addTasks`. */
      readonly parent?: string
      readonly tasks: readonly TaskSpec[]
      readonly at: number
    }
  | {
      /** Pipeline strategy: every task of `stage` has ended; the journal is durable up to here. */
      readonly type: 'stage'
      readonly stage: string
      readonly completed: boolean
      readonly at: number
    }
  /** A task's approve gate: awaiting, approved or rejected (with the request that decided, if any). */
  | ({ readonly type: 'approval' } & ApprovalRecord)
  | { readonly type: 'run-end'; readonly status: RunResult['status']; readonly totals: RunResult['totals']; readonly at: number }

