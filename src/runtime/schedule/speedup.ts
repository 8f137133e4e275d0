/**
 * The speedup figures of a run, as pure functions of its measured task intervals: makespan,
 * sequential work, critical path, the slots the run is judged against (`parallelism`), the
 * lower bound and which bound it is (`boundedBy`), speedup, efficiency and the verdict
 * (verdict.ts). docs/library.md "RunResult" defines them.
 */
import { criticalPath, type Graph } from '../plan/graph.ts'
import { classifyParallelization, type Parallelization } from './verdict.ts'

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
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!
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

/** What {@link effectiveParallelism} reads of a run's governor report (`GovernorReport`). */
export interface GovernorHold {
  readonly machine?: { readonly cores: number }
  readonly heldMs?: { readonly cpu: number }
}

/**
 * The slots the speedup figures are judged against: `maxParallel`, or the machine's cores when
 * the governor held CPU-bound tasks to them (default maxParallel is sized for agents that wait,
 * so a CPU-bound plan would otherwise be judged against 64 slots it could never use).
 */
export function effectiveParallelism(maxParallel: number, governor: GovernorHold | undefined): number {
  const cores = governor?.machine?.cores
  if (cores === undefined || !((governor?.heldMs?.cpu ?? 0) > 0)) return maxParallel
  return Math.max(1, Math.min(maxParallel, Math.round(cores)))
}
