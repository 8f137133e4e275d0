import { isDeepStrictEqual } from 'node:util'
import { didYouMean } from '../core/did-you-mean.ts'
import { TroupeError, describeValue } from '../core/errors.ts'
import { descendants } from './graph.ts'
import { linkTasks } from './link-tasks.ts'
import type { TaskFields } from './plan-schema.ts'
import { compileTask, decodeTaskSpec, taskPath, type CompiledPlan, type CompiledStage, type CompiledTask, type Strategy, type TaskLinker } from './plan.ts'
import type { PlanWorkspace } from './workspace-spec.ts'

/** Most tasks one call may add (`ctx.spawn`, `add_tasks`, `Run.addTasks`). */
export const MAX_ADDED_PER_CALL = 10_000

export interface AddOptions {
  /** Names the caller in messages, e.g. `ctx.spawn of task "lead"`. */
  readonly source: string
  /** Id of the task adding them (`ctx.spawn`, `add_tasks`); absent for `Run.addTasks`. */
  readonly parent?: string
  /**
   * The run index of a parent that will wait for these tasks: none of them may depend on it
   * or on anything downstream of it, or the parent would wait for itself.
   */
  readonly waitingParent?: number
  /**
   * Barrier strategies (waves, pipeline, hybrid): the stage the tasks join, the one open now
   * (a `stage` field naming another is refused); undefined otherwise.
   */
  readonly stage?: string
  /** The strategy keeps barriers: added tasks join the open stage. */
  readonly barrier?: boolean
}

/** What one call added. */
export interface Addition {
  /** Run indices of every task of the call, in the order given: new ones, and ones an identical earlier call added. */
  readonly tasks: readonly number[]
  /** The tasks new to the run, dependencies before dependents. */
  readonly added: readonly CompiledTask[]
}

/**
 * The plan of one run: the compiled plan it started from, plus the tasks added while it runs
 * (`ctx.spawn`, the `add_tasks` tool, `Run.addTasks`, and on resume the journal's additions).
 * Everything in the run reads the plan through this object, so an addition is seen at once.
 * The compiled plan is never changed (it may be shared by other runs): the first addition
 * copies the task and edge tables, later ones extend the copies.
 *
 * An addition is validated as a whole before anything changes, with the plan's error codes:
 * ERR_PLAN_INVALID (a field), ERR_PLAN_DUPLICATE_ID, ERR_PLAN_UNKNOWN_DEPENDENCY,
 * ERR_PLAN_CYCLE (also: children a waiting parent would wait for itself through). Adding a
 * task again with the same id, parent and definition is not a duplicate: it names the task
 * already added (a parent that runs again, e.g. after a resume, spawns the same children).
 */
export class RunPlan implements CompiledPlan {
  readonly name: string
  readonly strategy: Strategy | undefined
  readonly maxParallel: number | undefined
  readonly stages: Readonly<Record<string, CompiledStage>> | undefined
  readonly baseDir: string
  readonly workspaces?: PlanWorkspace
  readonly linker?: TaskLinker
  #tasks: CompiledTask[]
  #deps: (readonly number[])[]
  #dependents: (readonly number[])[]
  #order: number[]
  #byId: Map<string, number>
  #grown = false

  constructor(base: CompiledPlan) {
    this.name = base.name
    this.strategy = base.strategy
    this.maxParallel = base.maxParallel
    this.stages = base.stages
    this.baseDir = base.baseDir
    if (base.workspaces !== undefined) this.workspaces = base.workspaces
    if (base.linker !== undefined) this.linker = base.linker
    this.#tasks = base.tasks as CompiledTask[]
    this.#deps = base.deps as (readonly number[])[]
    this.#dependents = base.dependents as (readonly number[])[]
    this.#order = base.order as number[]
    this.#byId = base.byId as Map<string, number>
  }

  get tasks(): readonly CompiledTask[] {
    return this.#tasks
  }

  get deps(): readonly (readonly number[])[] {
    return this.#deps
  }

  get dependents(): readonly (readonly number[])[] {
    return this.#dependents
  }

  get order(): readonly number[] {
    return this.#order
  }

  get byId(): ReadonlyMap<string, number> {
    return this.#byId
  }

  /** Validates `raw` (an array of tasks, as in a plan) and adds it to the run; throws, adding nothing, if any task is invalid. */
  add(raw: unknown, options: AddOptions): Addition {
    const linker = this.linker
    if (linker === undefined) throw new TroupeError('ERR_ARGUMENT_INVALID', `${options.source}: this run's plan was not compiled by troupe (compilePlan/loadPlan), so it cannot add tasks`)
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_ADDED_PER_CALL) {
      throw new TroupeError('ERR_PLAN_INVALID', `${options.source}: \`tasks\` is ${describeValue(raw)}: expected a non-empty array of at most ${MAX_ADDED_PER_CALL} tasks`)
    }
    const subject = `Invalid tasks added by ${options.source}`
    const data = { tasks: raw }
    const calls: number[] = new Array(raw.length)
    const fresh: { spec: TaskFields; at: number }[] = []
    const local = new Map<string, number>()
    raw.forEach((item, at) => {
      let spec = decodeTaskSpec(item, subject, taskPath(data, at))
      if (options.barrier) {
        if (spec.stage !== undefined && spec.stage !== options.stage) {
          throw invalid(options.source, `tasks[${at}] ("${spec.id}").stage`, spec.stage, `absent, or "${options.stage ?? ''}": added tasks join the stage running now`)
        }
        if (options.stage !== undefined) spec = { ...spec, stage: options.stage }
      }
      if ((spec.workspace ?? linker.workspace) === 'worktree') {
        throw invalid(options.source, `tasks[${at}] ("${spec.id}").workspace`, spec.workspace ?? 'worktree (the plan default)', '"none": tasks added at run time run without a worktree of their own')
      }
      for (const key of ['repair', 'check'] as const) {
        if (spec[key] === undefined) continue
        const allowed = 'no value: tasks added at run time have no worktree, so nothing to repair or check'
        throw invalid(options.source, `tasks[${at}] ("${spec.id}").${key}`, spec[key], allowed)
      }
      if (local.has(spec.id)) {
        throw new TroupeError('ERR_PLAN_DUPLICATE_ID', `${subject}: two tasks have id "${spec.id}" (tasks[${local.get(spec.id)}] and tasks[${at}]); task ids must be unique`)
      }
      local.set(spec.id, at)
      const existing = this.#byId.get(spec.id)
      if (existing !== undefined) {
        const task = this.#tasks[existing]!
        if (task.added && task.parent === options.parent && isDeepStrictEqual(task.spec, spec)) {
          calls[at] = existing
          return
        }
        throw new TroupeError('ERR_PLAN_DUPLICATE_ID', `${subject}: tasks[${at}] has id "${spec.id}", which is already a task of this run; task ids must be unique`)
      }
      calls[at] = -1 - fresh.length
      fresh.push({ spec, at })
    })

    // Dependencies: on tasks of this call (by local number) or of the run.
    const freshIndex = new Map(fresh.map(({ spec }, k) => [spec.id, k]))
    const first = this.#tasks.length
    // A waiting parent, and everything downstream of it, ends only after these tasks.
    const forbidden = options.waitingParent === undefined ? undefined : new Set([options.waitingParent, ...descendants(this, options.waitingParent)])
    const named = (k: number) => `tasks[${fresh[k]!.at}] ("${fresh[k]!.spec.id}")`
    const links = linkTasks(
      fresh.map(({ spec }) => spec),
      {
        byId: freshIndex,
        messages: {
          unknownDependency: (k, depId) => {
            const known = [...freshIndex.keys(), ...this.#byId.keys()]
            return `${subject}: ${named(k)} depends on "${depId}", which is not a task of this run${didYouMean(depId, known)}`
          },
          selfDependency: (k) => `${subject}: ${named(k)} depends on itself`,
          cycle: (path) => `${subject}: a cycle: ${path.map((k) => fresh[k]!.spec.id).join(' → ')}`,
        },
        outside: (depId, k) => {
          const dep = this.#byId.get(depId)
          if (dep !== undefined && forbidden?.has(dep)) {
            const parent = this.#tasks[options.waitingParent!]!.id
            const why = `which cannot end before "${parent}" does, and "${parent}" waits for its children: a cycle`
            throw new TroupeError('ERR_PLAN_CYCLE', `${subject}: ${named(k)} depends on "${depId}", ${why}`)
          }
          return dep
        },
      },
    )
    const { deps: localDeps, dependents: localDependents, outside: runDeps, order } = links

    // Everything checked but the agents: link each new task (run index = first + its number).
    const added = fresh.map(({ spec, at }, k): CompiledTask => {
      const deps = [...(runDeps[k] ?? []), ...localDeps[k]!.map((j) => first + j)]
      const task = compileTask(spec, first + k, deps, localDependents[k]!.map((j) => first + j), linker, `tasks[${at}]`)
      return options.parent === undefined ? { ...task, added: true } : { ...task, added: true, parent: options.parent }
    })

    this.#grow()
    for (const task of added) {
      this.#tasks.push(task)
      this.#deps.push(task.deps)
      this.#dependents.push(task.dependents)
      this.#byId.set(task.id, task.index)
    }
    for (const task of added) {
      for (const dep of task.deps) if (dep < first) this.#dependents[dep] = [...this.#dependents[dep]!, task.index]
    }
    for (const k of order) this.#order.push(first + k)
    return { tasks: calls.map((c) => (c < 0 ? first - 1 - c : c)), added: order.map((k) => added[k]!) }
  }

  /** The first addition copies the compiled plan's tables, so that it is never changed. */
  #grow(): void {
    if (this.#grown) return
    this.#grown = true
    this.#tasks = [...this.#tasks]
    this.#deps = [...this.#deps]
    this.#dependents = [...this.#dependents]
    this.#order = [...this.#order]
    this.#byId = new Map(this.#byId)
  }
}

function invalid(source: string, field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Invalid tasks added by ${source}: \`${field}\` is ${describeValue(value)}: expected ${allowed}`)
}
