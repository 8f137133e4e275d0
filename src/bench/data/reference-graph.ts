import { fileURLToPath } from 'node:url'
import type { SchedulablePlan } from '../../index.ts'

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
 * The repository's vendored `data/` folder (see data/README.md), or `TROUPE_DATA_DIR` when
 * set. The same path works from `src/` and from `dist/`.
 */
export function referenceDataDir(): string {
  return process.env.TROUPE_DATA_DIR ?? fileURLToPath(new URL('../../../data', import.meta.url))
}

/** Builds a plan from dependency lists. Throws when the graph has a cycle (bad data). */
export function referenceGraph(name: string, ids: readonly string[], deps: readonly (readonly number[])[], durations: Float64Array): ReferenceGraph {
  const dependents: number[][] = ids.map(() => [])
  deps.forEach((list, task) => {
    for (const dep of list) dependents[dep]!.push(task)
  })
  const graph = { deps, dependents }
  const order = kahnOrder(deps, dependents)
  if (order === undefined) throw new Error(`${name}: the task graph has a cycle`)
  const tasks = Array.from(durations, (estimateMs) => ({ estimateMs }))
  return { name, plan: { ...graph, tasks, order }, durations, ids }
}

/** A topological order of reference data (Kahn's algorithm), or undefined for a cycle. */
function kahnOrder(deps: readonly (readonly number[])[], dependents: readonly (readonly number[])[]): number[] | undefined {
  const waiting = deps.map((list) => list.length)
  const order = waiting.flatMap((n, task) => (n === 0 ? [task] : []))
  for (let at = 0; at < order.length; at++) {
    for (const next of dependents[order[at]!]!) if (--waiting[next]! === 0) order.push(next)
  }
  return order.length === deps.length ? order : undefined
}
