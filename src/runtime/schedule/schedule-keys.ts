/**
 * The scheduler's tables, computed: duration estimates, the ready-order keys, the barrier
 * group of each task, and how to grow a typed table. Pure.
 */
import { dependencyLevels, type Graph } from '../plan/graph.ts'
import type { Strategy } from '../plan/plan.ts'
import { stageOrder } from '../plan/stages.ts'
import { isStaged } from '../plan/strategies.ts'

/** The task fields the tables read. */
interface KeyedPlan extends Graph {
  readonly tasks: readonly { readonly estimateMs?: number | undefined; readonly stage?: string | undefined }[]
  readonly order: readonly number[]
  readonly stages?: Readonly<Record<string, unknown>> | undefined
}

/** The estimate of a task without `estimateMs`: the plan's median estimate, or 1 when no task has one. */
export function fallbackEstimate(plan: Pick<KeyedPlan, 'tasks'>): number {
  const known = plan.tasks.map((t) => t.estimateMs).filter((e): e is number => e !== undefined).sort((a, b) => a - b)
  return known.length === 0 ? 1 : known[known.length >> 1]!
}

/**
 * Per-task durations for critical-path ordering: `estimateMs`, or for tasks without one the
 * plan's median estimate (or 1 when no task has an estimate).
 */
export function estimatedDurations(plan: Pick<KeyedPlan, 'tasks'>): Float64Array {
  const fallback = fallbackEstimate(plan)
  return Float64Array.from(plan.tasks, (t) => t.estimateMs ?? fallback)
}

/** A copy of `array` with room for `size` entries (typed arrays have a fixed length). */
export function grown<T extends Uint8Array | Int32Array | Float64Array>(array: T, size: number): T {
  if (array.length >= size) return array
  const bigger = new (array.constructor as new (n: number) => T)(Math.max(size, array.length * 2))
  bigger.set(array)
  return bigger
}

/**
 * The ready-order keys in one backward pass over the edges (the pass is memory-bound on
 * large plans, so both keys share it): b-level, as `bottomLevels` in graph.ts, and the work
 * on every dependency path leaving the task, summed over the paths.
 */
export function orderingKeys(graph: Graph, order: readonly number[], durations: Float64Array): { blevel: Float64Array; downstream: Float64Array } {
  const keys = { blevel: new Float64Array(durations.length), downstream: new Float64Array(durations.length) }
  fillOrderingKeys(graph, order, durations, keys)
  return keys
}

/**
 * {@link orderingKeys} for the tasks of `order` (a topological order of them, whose dependents
 * already have their keys), written into `keys`: how tasks added to a running schedule get theirs.
 */
export function fillOrderingKeys(graph: Graph, order: readonly number[], durations: Float64Array, keys: { readonly blevel: Float64Array; readonly downstream: Float64Array }): void {
  const { blevel, downstream } = keys
  for (let k = order.length - 1; k >= 0; k--) {
    const task = order[k]!
    const dependents = graph.dependents[task]!
    let longest = 0
    let sum = 0
    for (let j = 0; j < dependents.length; j++) {
      const next = dependents[j]!
      if (blevel[next]! > longest) longest = blevel[next]!
      sum += durations[next]! + downstream[next]!
    }
    blevel[task] = durations[task]! + longest
    downstream[task] = sum
  }
}

/** Each task's barrier group: a dependency level (waves), a stage (pipeline, hybrid), or 0. */
export function groupsFor(plan: KeyedPlan, strategy: Strategy): Int32Array {
  const n = plan.tasks.length
  if (strategy === 'waves') return dependencyLevels(plan, plan.order)
  // Hybrid: stages in declared order; pipeline: in order of first appearance.
  if (isStaged(strategy)) return stageOrder(plan).index
  return new Int32Array(n)
}
