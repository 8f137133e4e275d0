import type { TaskState } from '../../actors/task-state.ts'
import type { SerializedError } from './errors.ts'
import { criticalPath, type Graph } from '../plan/graph.ts'
import type { GovernorReport } from '../admission/governor-policy.ts'
import type { PlanStrategy } from '../plan/plan.ts'
import type { UsageSummary } from '../admission/usage.ts'

export type Parallelization = 'PARALLEL' | 'PARTIAL' | 'SEQUENTIAL'
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
  /** As the plan named it: a hybrid plan runs as a pipeline of its stages, and says `hybrid`. */
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

/**
 * The parallelization verdict (docs/library.md "RunResult"): PARALLEL when the makespan is within 20 % of the lower bound,
 * PARTIAL when it saves at least 20 % over sequential, else SEQUENTIAL.
 */
export function classifyParallelization(makespanMs: number, lowerBoundMs: number, sequentialMs: number): Parallelization {
  if (makespanMs <= 1.2 * lowerBoundMs) return 'PARALLEL'
  if (makespanMs <= 0.8 * sequentialMs) return 'PARTIAL'
  return 'SEQUENTIAL'
}

export interface SpeedupFigures {
  /** First start to last finish. */
  readonly makespanMs: number
  /** Sum of the task attempts' durations. */
  readonly sequentialMs: number
  /** Longest dependency chain, by measured durations. */
  readonly criticalPathMs: number
  /** min(makespanMs, max(criticalPathMs, sequentialMs / parallelism)): never above the makespan. */
  readonly lowerBoundMs: number
  readonly speedup: number
  /** speedup / parallelism, in 0–1. */
  readonly efficiency: number
  readonly parallelization: Parallelization
  /**
   * The slots the run is judged against, the one definition behind `efficiency` and
   * `lowerBoundMs`: the smaller of maxParallel and the machine's cores when the governor held
   * CPU-bound tasks to them — but never fewer than the most tasks that did run at once (then
   * those slots did not bound the run).
   */
  readonly parallelism: number
  /**
   * Which bound `lowerBoundMs` is, the one the verdict is judged against: the critical path,
   * or the work spread over `parallelism` slots.
   */
  readonly boundedBy: 'critical-path' | 'slots'
}

/** A task's work: its attempts' time, less what it spent waiting for tasks it spawned. */
export function workMs(task: { readonly durationMs?: number | undefined; readonly waitedMs?: number | undefined }): number {
  return Math.max(0, (task.durationMs ?? 0) - (task.waitedMs ?? 0))
}

/**
 * Speedup figures from measured per-task intervals. Tasks that did not run have no interval.
 * `parallelism`: the slots that bounded the run (see {@link SpeedupFigures.parallelism});
 * `peakConcurrency`, when known, raises it to what did run at once.
 */
export function speedupFigures(
  graph: Graph,
  order: readonly number[],
  tasks: readonly { readonly startedAt?: number | undefined; readonly finishedAt?: number | undefined; readonly durationMs?: number | undefined; readonly waitedMs?: number | undefined }[],
  parallelism: number,
  peakConcurrency = 0,
): SpeedupFigures {
  let first = Infinity
  let last = -Infinity
  let sequentialMs = 0
  for (const t of tasks) {
    if (t.startedAt === undefined || t.finishedAt === undefined) continue
    if (t.startedAt < first) first = t.startedAt
    if (t.finishedAt > last) last = t.finishedAt
    sequentialMs += workMs(t)
  }
  const makespanMs = last > first ? last - first : 0
  const slots = Math.max(1, parallelism, peakConcurrency)
  const criticalPathMs = criticalPath(graph, order, (i) => (tasks[i]!.startedAt === undefined ? 0 : workMs(tasks[i]!))).lengthMs
  const spreadMs = sequentialMs / slots
  const boundedBy = criticalPathMs >= spreadMs ? 'critical-path' : 'slots'
  // Measured bounds can pass the makespan (overlapping attempts, clock steps): a lower bound never does.
  const lowerBoundMs = Math.min(makespanMs, Math.max(criticalPathMs, spreadMs))
  const speedup = makespanMs > 0 ? sequentialMs / makespanMs : 1
  return {
    makespanMs,
    sequentialMs,
    criticalPathMs,
    lowerBoundMs,
    speedup: round(speedup),
    efficiency: round(Math.min(1, Math.max(0, speedup / slots))),
    parallelization: makespanMs > 0 ? classifyParallelization(makespanMs, lowerBoundMs, sequentialMs) : 'PARALLEL',
    parallelism: slots,
    boundedBy,
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}
