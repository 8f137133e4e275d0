import { TroupeError } from '../core/errors.ts'
import { findCycle, topologicalOrder } from './graph.ts'

/** A task as linking sees it: its id and the ids it depends on. */
export interface LinkableTask {
  readonly id: string
  readonly dependsOn?: readonly string[] | undefined
}

/** What a caller says in the errors of linking, given task numbers (positions in the list linked). */
export interface LinkMessages {
  /** ERR_PLAN_UNKNOWN_DEPENDENCY: task `task` depends on `depId`, which neither the list nor `outside` knows. */
  unknownDependency(task: number, depId: string): string
  /** ERR_PLAN_CYCLE: task `task` depends on itself. */
  selfDependency(task: number): string
  /** ERR_PLAN_CYCLE: the tasks of `path` (a dependency before its dependent, the first repeated last) form a circle. */
  cycle(path: readonly number[]): string
}

export interface LinkTasksOptions {
  /** Each task's number in the list, by id (ids are unique: the caller checked). */
  readonly byId: ReadonlyMap<string, number>
  readonly messages: LinkMessages
  /**
   * Resolves a dependency that is not in the list: a task already in the run (tasks added at
   * run time). It may throw to refuse one. Absent: every dependency must be in the list.
   */
  readonly outside?: (depId: string, task: number) => number | undefined
}

export interface TaskLinks {
  /** Per task: the numbers of the tasks of the list it depends on, in `dependsOn` order, each once. */
  readonly deps: number[][]
  /** Per task: the numbers of the tasks of the list that depend on it (the reverse edges). */
  readonly dependents: number[][]
  /** Per task with dependencies outside the list: what `outside` resolved them to, each once. */
  readonly outside: (number[] | undefined)[]
  /** The list's tasks, each after its dependencies (graph.ts `topologicalOrder`). */
  readonly order: number[]
}

/**
 * Links a list of tasks: resolves each `dependsOn` id to a task number, builds the reverse
 * edges and a topological order, and refuses unknown dependencies and cycles with the plan's
 * error codes. The one linking of tasks: a whole plan (`linkPlan`) and tasks added to a
 * running one (`RunPlan.add`, where `outside` resolves the run's own tasks).
 */
export function linkTasks(tasks: readonly LinkableTask[], options: LinkTasksOptions): TaskLinks {
  const { byId, messages, outside: resolveOutside } = options
  const deps: number[][] = new Array(tasks.length)
  const dependents: number[][] = new Array(tasks.length)
  const outside: (number[] | undefined)[] = new Array(tasks.length)
  for (let index = 0; index < tasks.length; index++) dependents[index] = []
  for (let index = 0; index < tasks.length; index++) {
    const mine: number[] = (deps[index] = [])
    for (const depId of tasks[index]!.dependsOn ?? []) {
      const dep = byId.get(depId)
      if (dep === index) throw new TroupeError('ERR_PLAN_CYCLE', messages.selfDependency(index))
      if (dep !== undefined) {
        if (mine.includes(dep)) continue
        mine.push(dep)
        dependents[dep]!.push(index)
        continue
      }
      const far = resolveOutside?.(depId, index)
      if (far === undefined) throw new TroupeError('ERR_PLAN_UNKNOWN_DEPENDENCY', messages.unknownDependency(index, depId))
      const theirs = (outside[index] ??= [])
      if (!theirs.includes(far)) theirs.push(far)
    }
  }
  for (let index = 0; index < tasks.length; index++) {
    deps[index] = exact(deps[index]!)
    dependents[index] = exact(dependents[index]!)
  }
  const graph = { deps, dependents }
  const order = topologicalOrder(graph)
  if (order === undefined) throw new TroupeError('ERR_PLAN_CYCLE', messages.cycle(findCycle(graph)!))
  return { deps, dependents, outside, order }
}

/** No edges: one array shared by every task that has none. */
const NO_EDGES: number[] = Object.freeze([]) as unknown as number[]

/**
 * An edge list kept for the plan's life at its exact size: one grown by `push` holds up to
 * twice its length (a 100,000-task plan's edge lists were ~20 MB of spare capacity).
 */
function exact(edges: number[]): number[] {
  return edges.length === 0 ? NO_EDGES : edges.slice()
}
