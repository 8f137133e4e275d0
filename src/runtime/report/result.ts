import type { TaskState } from '../core/task-state.ts'
import type { SerializedError } from '../core/errors.ts'
import type { GovernorReport } from '../governor/governor-policy.ts'
import type { PlanStrategy } from '../plan/plan.ts'
import type { RepairRecord } from '../plan/repair-spec.ts'
import type { UsageSummary } from '../admission/usage.ts'
import type { SpeedupFigures } from '../schedule/speedup.ts'
import type { Parallelization } from '../schedule/verdict.ts'

export type { Parallelization }

export type { RepairRecord }

/**
 * `paused`: the budget ran out with `onExceeded: "pause"`: no task started after that, those
 * running finished, those never started are CANCELLED with ERR_BUDGET_EXCEEDED; resuming the
 * run (its journal) with a larger `budget.maxCostUsd` runs them. CLI exit code 3.
 */
export type RunStatus = 'completed' | 'failed' | 'cancelled' | 'paused'

export interface TaskResult {
  readonly state: TaskState
  readonly attempts: number
  readonly startedAt?: number
  readonly finishedAt?: number
  /** Sum of this task's attempts' durations. */
  readonly durationMs?: number
  /**
   * Of `durationMs`, the time the task waited for tasks it spawned (`ctx.spawn` with `wait`),
   * holding no slot: not work, so the speedup figures leave it out.
   */
  readonly waitedMs?: number
  readonly output?: unknown
  readonly error?: SerializedError
  /** True when the output was taken from a previous run's journal. */
  readonly reused?: boolean
  /** True when the output was taken from the task cache (`cache: true`): the agent did not run. */
  readonly cached?: boolean
  /** What became of the task's git worktree (worktree tasks that started). */
  readonly workspace?: TaskWorkspaceResult
  /** Where the final attempt ran: `local` (this process), or the name of a `troupe worker`. */
  readonly worker?: string
  /** Added at run time: true, and `parent` names the task that added it (absent for `Run.addTasks`). */
  readonly added?: true
  readonly parent?: string
  /** Worktree tasks with `repair`: each repair, over all attempts, in order (docs/workspaces.md "Repair"). */
  readonly repairs?: readonly RepairRecord[]
}

/** A worktree task's branch and what its merge into the integration branch did. */
export interface TaskWorkspaceResult {
  readonly branch: string
  readonly filesChanged: number
  readonly insertions: number
  readonly deletions: number
  /** `discarded`: the attempt failed or was cancelled, so nothing was merged. */
  readonly merge: 'merged' | 'conflict' | 'verify-failed' | 'discarded'
}

export interface RunTotals {
  readonly tasks: number
  readonly completed: number
  readonly failed: number
  readonly skipped: number
  readonly cancelled: number
  readonly reused: number
  /** Completed tasks whose output came from the task cache. */
  readonly cached: number
}

/** The outcome of a run (docs/library.md "RunResult"); also `troupe run --json` output. */
export interface RunResult extends Omit<SpeedupFigures, 'parallelization'> {
  /**
   * The verdict; absent when the run says nothing about parallelism: it was cancelled (or
   * paused by its budget), or its agents failed to load.
   */
  readonly parallelization?: Parallelization
  readonly runId: string
  readonly name: string
  readonly status: RunStatus
  /** The strategy the run used: the run option, else the plan's (`hybrid` for a plan of declared stages). */
  readonly strategy: PlanStrategy
  readonly maxParallel: number
  readonly startedAt: number
  readonly finishedAt: number
  /** sequentialMs − makespanMs: the time running in parallel saved. */
  readonly timeSavedMs?: number
  /** completed / (tasks − tasks skipped by their `when` condition); 1 when no task was meant to run. */
  readonly successRate?: number
  /** Most tasks RUNNING at once during the run. */
  readonly peakConcurrency?: number
  /** Per agent: its tasks' busy time (sum of attempt durations) / makespan; can exceed 1 when its tasks overlap. */
  readonly agentUtilization?: Readonly<Record<string, number>>
  readonly totals: RunTotals
  readonly tasks: Readonly<Record<string, TaskResult>>
  /** Spend the agents reported with `ctx.usage`: in total, by agent and by model. */
  readonly usage?: UsageSummary
  /** What the resource governor did while the run was in flight; absent when it is disabled. */
  readonly governor?: GovernorReport
  /** The branch worktree tasks were merged into, when the plan uses worktrees. */
  readonly integrationBranch?: string
  readonly error?: SerializedError
}
