import { fileURLToPath } from 'node:url'
import { topologicalOrder } from '../../runtime/plan/graph.ts'
import type { SchedulablePlan } from '../../runtime/schedule/scheduler.ts'

/** A task graph from published reference data, ready for the simulated scheduler. */
export interface ReferenceGraph {
  /** Path relative to the data directory, e.g. `50/rand0000.stg`. */
  readonly name: string
  /** Tasks carry their duration as `estimateMs`, so the scheduler's b-levels are exact. */
  readonly plan: SchedulablePlan
  /** Duration of each task by index, in the data's unit (STG: time units; WfInstances: ms). */
  readonly durations: Float64Array
  /** Task labels by index, as in the source file. */
  readonly ids: readonly string[]
}

/**
 * `../shared/data` beside the repository (the layout in CI and on the dev machine), or
 * `TROUPE_DATA_DIR` when set. The same path works from `src/` and from `dist/`.
 */
export function referenceDataDir(): string {
  return process.env.TROUPE_DATA_DIR ?? fileURLToPath(new URL('../../../../shared/data', import.meta.url))
}

/** Builds a plan from dependency lists. Throws when the graph has a cycle (bad data). */
export function referenceGraph(name: string, ids: readonly string[], deps: readonly (readonly number[])[], durations: Float64Array): ReferenceGraph {
  const dependents: number[][] = ids.map(() => [])
  deps.forEach((list, task) => {
    for (const dep of list) dependents[dep]!.push(task)
  })
  const graph = { deps, dependents }
  const order = topologicalOrder(graph)
  if (order === undefined) throw new Error(`${name}: the task graph has a cycle`)
  const tasks = Array.from(durations, (estimateMs) => ({ estimateMs }))
  return { name, plan: { ...graph, tasks, order }, durations, ids }
}
