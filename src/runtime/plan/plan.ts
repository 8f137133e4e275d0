import * as Schema from 'effect/Schema'
import { didYouMean } from '../core/did-you-mean.ts'
import { TroupeError, describeValue } from '../core/errors.ts'
import { formatKeyPath, valueOrThrow, type IssueFormatOptions } from '../core/schema-errors.ts'
import type { AgentSpec } from './agent-spec.ts'
import { checkTemplates, resolveAgentPath, resolveAgents } from './agent-links.ts'
import type { AgentEnvironment } from './agents.ts'
import { checkCondition } from './condition.ts'
import { checkInputGlobs } from './input-globs.ts'
import { findCycle, topologicalOrder, type Graph } from './graph.ts'
import { leanTask } from './lean-task.ts'
import { checkStageDependencies } from './stages.ts'
import { PlanSchema, TaskSchema, type PlanStrategy, type Priority, type StageFields, type Strategy, type TaskFields } from './plan-schema.ts'
import { parseWorkspaceSpec, type PlanWorkspace, type PlanWorkspaceFields, type TaskWorkspaceFields } from './workspace-spec.ts'

export { PRIORITIES, STRATEGIES, PLAN_STRATEGIES, MAX_PARALLEL, MAX_TIMEOUT_MS, MAX_INPUT_DEPTH } from './plan-schema.ts'
export type { Priority, Strategy, PlanStrategy } from './plan-schema.ts'

/** One task of a plan, as written by the user (docs/plans.md). */
export interface TaskSpec extends TaskWorkspaceFields {
  /** Unique within the plan. */
  readonly id: string
  /** A key of `plan.agents`, or a module path (`./agents/x.mjs`) relative to the plan. */
  readonly agent: string
  /** Any structured-clone-able value, nested at most 64 levels deep, handed to the agent as its first argument. */
  readonly input?: unknown
  /** Ids of the tasks that must COMPLETE before this one starts. */
  readonly dependsOn?: readonly string[]
  /** @default 'medium' */
  readonly priority?: Priority
  /** Per attempt, at most 2,147,483,647 (the longest timer Node keeps). @default config.timeoutMs */
  readonly timeoutMs?: number
  /** Extra attempts after the first. @default config.retry.maxRetries */
  readonly retries?: number
  /** Expected duration, for critical-path ordering and estimates. */
  readonly estimateMs?: number
  /** Files or resources it writes (paths or globs): overlapping claims never run at once. */
  readonly claims?: readonly string[]
  /** Named limits (config.limits) it holds one unit of while it runs. */
  readonly uses?: readonly string[]
  /** Pipeline strategy: stages run in order of first appearance. Hybrid: a key of `plan.stages`. */
  readonly stage?: string
  /** Shown by `troupe plan` and views; never interpreted. */
  readonly description?: string
  /** Shown by `troupe plan` and views; never interpreted. */
  readonly tags?: readonly string[]
  /** A prior for the governor (it learns the real demand per agent). */
  readonly resources?: { readonly cpu?: number; readonly memoryMb?: number }
  /** Runs the task only if this expression over `deps.ID.output…` and `input…` is true, e.g. `deps.check.output.ok == true`. */
  readonly when?: string
  /**
   * Files whose contents the task's output depends on (globs relative to the plan's directory,
   * which they may not leave): part of its cache key (docs/plans.md "Caching across runs").
   */
  readonly inputs?: readonly string[]
  /** Reuse the output of an earlier run with the same definition, inputs and dependency outputs. @default the plan's `cache`, else false */
  readonly cache?: boolean
}

/** The rule of one stage of a `hybrid` plan. */
export interface StageSpec {
  /** Tasks of the stage run at once (true) or one at a time (false). */
  readonly parallel: boolean
  /** At most this many of the stage's tasks at once. */
  readonly maxParallel?: number
  /** A failed task skips the rest of the stage and every later stage. */
  readonly failFast?: boolean
}

/** A plan: a set of agent tasks with dependencies (docs/plans.md). */
export interface Plan extends PlanWorkspaceFields {
  /** A JSON plan file's editor schema (`troupe schema plan`); ignored. */
  readonly $schema?: string
  readonly name?: string
  /** @default 'concurrent' */
  readonly strategy?: PlanStrategy
  /** Overrides config.maxParallel for runs of this plan; at most 10,000. */
  readonly maxParallel?: number
  /** Agent name → ES module path relative to the plan file (or `baseDir`), or a built-in kind (docs/agents.md). */
  readonly agents?: Readonly<Record<string, string | Readonly<Record<string, unknown>>>>
  /** `strategy: hybrid`: stage name → its rule, in the order the stages run. */
  readonly stages?: Readonly<Record<string, StageSpec>>
  /** The default of every task's `cache`. @default false */
  readonly cache?: boolean
  readonly tasks: readonly TaskSpec[]
}

/** A validated task, with its links resolved to indices. */
export interface CompiledTask {
  readonly index: number
  readonly id: string
  readonly agent: string
  /** `file:` URL of the agent module (module agents; '' for other kinds). */
  readonly moduleUrl: string
  /** The compiled agent definition: its kind and how to run it. */
  readonly agentSpec: AgentSpec
  readonly input: unknown
  readonly deps: readonly number[]
  readonly dependents: readonly number[]
  readonly priority: Priority
  readonly timeoutMs: number | undefined
  readonly retries: number | undefined
  readonly estimateMs: number | undefined
  readonly claims: readonly string[]
  readonly uses: readonly string[]
  readonly stage: string | undefined
  readonly description: string | undefined
  readonly tags: readonly string[]
  readonly resources: { readonly cpu?: number; readonly memoryMb?: number } | undefined
  /** The `when` expression's source (validated: its syntax, and that every `deps.X` is a dependency). */
  readonly when: string | undefined
  /** Its output may come from the cache (`cache`, or the plan's default). */
  readonly cache: boolean
  /** `inputs` globs, checked to stay inside the plan's directory. */
  readonly inputs: readonly string[]
  /** The task as written, for journals and reports. */
  readonly spec: TaskSpec
  /** Tasks added at run time: the id of the task that added them (absent for `Run.addTasks`, and for the plan's own). */
  readonly parent?: string
  /** True for a task added at run time (`ctx.spawn`, `add_tasks`, `Run.addTasks`). */
  readonly added?: true
}

/**
 * What linking a task needs beyond the task: the plan's agents by name (and module paths
 * already used inline), where to find more, and the plan's workspace default. Kept on the
 * compiled plan, so tasks added at run time are linked exactly like the plan's own.
 */
export interface TaskLinker {
  readonly agents: Map<string, AgentSpec>
  readonly environment: AgentEnvironment
  readonly baseDir: string
  /** The plan's `workspace` default. */
  readonly workspace: 'none' | 'worktree'
  /** The plan's `cache` default. */
  readonly cache?: boolean
}

/** One stage of a `hybrid` plan, with its rule. */
export interface CompiledStage {
  readonly name: string
  readonly parallel: boolean
  readonly maxParallel: number | undefined
  readonly failFast: boolean | undefined
}

/** A validated, acyclic plan. Immutable. */
export interface CompiledPlan extends Graph {
  readonly name: string
  /** The strategy to run with. A `hybrid` plan compiles to `pipeline`, with {@link CompiledPlan.stages} set. */
  readonly strategy: Strategy | undefined
  readonly maxParallel: number | undefined
  /**
   * `strategy: hybrid` only: its stages by name, keys in the order the stages run (a
   * null-prototype record, so a `CompiledPlan` is still a `Plan`).
   */
  readonly stages: Readonly<Record<string, CompiledStage>> | undefined
  readonly tasks: readonly CompiledTask[]
  readonly byId: ReadonlyMap<string, number>
  /** A topological order; ties keep plan order. */
  readonly order: readonly number[]
  /** Directory agent paths were resolved against. */
  readonly baseDir: string
  /** Git worktree settings (workspace-spec.ts); absent when no task uses a worktree. */
  readonly workspaces?: PlanWorkspace
  /** How to link tasks added at run time; absent on plans built by hand (they cannot grow). */
  readonly linker?: TaskLinker
}

export interface CompileOptions {
  /** Directory that relative agent paths resolve against. @default process.cwd() */
  readonly baseDir?: string
  /** Names the plan in messages, e.g. `plan file ./plan.yaml`. @default 'plan' */
  readonly source?: string
}

export interface LinkOptions {
  /** Absolute directory that relative agent paths resolve against. */
  readonly baseDir: string
  /** Finds modules and executables, checks API-key variables. Injected, so linking does no I/O. */
  readonly environment: AgentEnvironment
  /** Names the plan in messages. @default 'plan' */
  readonly source?: string
}

const decodePlan = Schema.decodeUnknownExit(PlanSchema, { onExcessProperty: 'error', errors: 'all' })
const decodeTask = Schema.decodeUnknownExit(TaskSchema, { onExcessProperty: 'error', errors: 'all' })

/**
 * Validates a plan object and links it for execution (ids to indices, agents to modules
 * through `options.environment`). Throws a TroupeError naming the field, the value
 * received and what is allowed.
 */
export function linkPlan(data: unknown, options: LinkOptions): CompiledPlan {
  const { baseDir, environment } = options
  const subject = `Invalid ${options.source ?? 'plan'}`
  const formatPath = (path: readonly PropertyKey[]) => formatPlanPath(data, path)
  const plan = valueOrThrow(decodePlan(data), data, 'ERR_PLAN_INVALID', subject, { formatPath })
  const agents = resolveAgents(data, baseDir, environment)
  const hybrid = plan.strategy === 'hybrid'
  if (hybrid !== (plan.stages !== undefined)) {
    throw invalid(hybrid ? 'stages' : 'strategy', hybrid ? undefined : plan.strategy, hybrid ? 'the stages of the hybrid strategy: { NAME: { parallel, maxParallel?, failFast? } }' : '"hybrid" (only a hybrid plan declares `stages`)')
  }
  const stages = plan.stages === undefined ? undefined : compileStages(plan.stages)
  const stageNames = new Set(stages === undefined ? [] : Object.keys(stages))

  const specs = plan.tasks
  const byId = new Map<string, number>()
  const parsed: TaskFields[] = new Array(specs.length)
  for (let index = 0; index < specs.length; index++) {
    const raw = specs[index]
    const spec = decodeTaskSpec(raw, subject, taskPath(data, index))
    const seen = byId.get(spec.id)
    if (seen !== undefined) {
      throw new TroupeError('ERR_PLAN_DUPLICATE_ID', `Plan has two tasks with id "${spec.id}" (tasks[${seen}] and tasks[${index}]); task ids must be unique`)
    }
    if (stages !== undefined && (spec.stage === undefined || !stageNames.has(spec.stage))) {
      throw invalid(`tasks[${index}] ("${spec.id}").stage`, spec.stage, `one of the declared stages: ${[...stageNames].join(', ')}${spec.stage === undefined ? '' : didYouMean(spec.stage, stageNames)}`)
    }
    byId.set(spec.id, index)
    parsed[index] = spec
  }

  const deps: number[][] = new Array(parsed.length)
  const dependents: number[][] = new Array(parsed.length)
  for (let index = 0; index < parsed.length; index++) dependents[index] = []
  for (let index = 0; index < parsed.length; index++) {
    const spec = parsed[index]!
    const mine: number[] = (deps[index] = [])
    for (const depId of spec.dependsOn ?? []) {
      const dep = byId.get(depId)
      if (dep === undefined) {
        throw new TroupeError('ERR_PLAN_UNKNOWN_DEPENDENCY', `Task "${spec.id}" depends on "${depId}", which is not a task of this plan${didYouMean(depId, byId.keys())}`)
      }
      if (dep === index) throw new TroupeError('ERR_PLAN_CYCLE', `Plan has a cycle: ${spec.id} → ${spec.id} (task depends on itself)`)
      if (mine.includes(dep)) continue
      mine.push(dep)
      dependents[dep]!.push(index)
    }
  }

  const graph = { deps, dependents }
  const order = topologicalOrder(graph)
  if (order === undefined) {
    const cycle = findCycle(graph)!
    throw new TroupeError('ERR_PLAN_CYCLE', `Plan has a cycle: ${cycle.map((i) => parsed[i]!.id).join(' → ')}`)
  }

  if (plan.strategy === 'pipeline' || hybrid) checkStageDependencies({ tasks: parsed, stages: plan.stages, deps })

  const workspaceDefault = (data as { workspace?: unknown }).workspace === 'worktree' ? 'worktree' : 'none'
  const linker: TaskLinker = { agents, environment, baseDir, workspace: workspaceDefault, cache: plan.cache ?? false }
  const tasks = parsed.map((spec, index) => compileTask(spec, index, deps[index]!, dependents[index]!, linker))

  const strategy = plan.strategy === 'hybrid' ? 'pipeline' : plan.strategy
  const workspaces = parseWorkspaceSpec(data as Record<string, unknown>, plan.tasks)
  return { name: plan.name ?? 'plan', strategy, maxParallel: plan.maxParallel, stages, tasks, byId, order, deps, dependents, baseDir, linker, ...(workspaces ? { workspaces } : {}) }
}

/** Decodes one task as written (the fast path for plain tasks, else the schema), or throws ERR_PLAN_INVALID naming the field. */
export function decodeTaskSpec(raw: unknown, subject: string, format: IssueFormatOptions): TaskFields {
  return leanTask(raw) ?? valueOrThrow(decodeTask(raw), raw, 'ERR_PLAN_INVALID', subject, format)
}

/**
 * Links one decoded task whose dependencies are resolved: its agent (by name, or a module
 * path given inline, cached so a 100,000-task plan checks each file once), its templates
 * and its condition. Throws a TroupeError naming the field.
 */
export function compileTask(spec: TaskFields, index: number, deps: readonly number[], dependents: readonly number[], linker: TaskLinker, where = `tasks[${index}]`): CompiledTask {
  let agentSpec = linker.agents.get(spec.agent)
  if (agentSpec === undefined) {
    agentSpec = resolveAgentPath(spec.agent, linker.baseDir, `${where}.agent`, linker.agents, linker.environment)
    linker.agents.set(spec.agent, agentSpec)
  }
  if (agentSpec.kind !== 'module') checkTemplates(spec, agentSpec, where)
  if (spec.when !== undefined) checkCondition(spec.when, `${where} ("${spec.id}").when`, spec.id, new Set(spec.dependsOn))
  if (spec.inputs !== undefined) checkInputGlobs(spec.inputs, `${where} ("${spec.id}").inputs`)
  return {
    index,
    id: spec.id,
    agent: spec.agent,
    moduleUrl: agentSpec.kind === 'module' ? agentSpec.moduleUrl : '',
    agentSpec,
    input: spec.input,
    deps,
    dependents,
    priority: spec.priority ?? 'medium',
    timeoutMs: spec.timeoutMs,
    retries: spec.retries,
    estimateMs: spec.estimateMs,
    claims: spec.claims ?? [],
    uses: spec.uses ?? [],
    stage: spec.stage,
    description: spec.description,
    tags: spec.tags ?? [],
    resources: spec.resources,
    when: spec.when,
    cache: spec.cache ?? linker.cache ?? false,
    inputs: spec.inputs ?? [],
    spec,
  }
}

function compileStages(declared: Readonly<Record<string, StageFields>>): Record<string, CompiledStage> {
  const stages: Record<string, CompiledStage> = Object.create(null)
  for (const name of Object.keys(declared)) {
    const s = declared[name]!
    stages[name] = { name, parallel: s.parallel, maxParallel: s.maxParallel, failFast: s.failFast }
  }
  return stages
}

/** `tasks[3] ("build").retries`: a task's position and, when it has one, its id. */
function formatPlanPath(data: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'tasks' || typeof path[1] !== 'number') return formatKeyPath(path)
  const id = (data as { tasks: { id?: unknown }[] }).tasks[path[1]]?.id
  const task = typeof id === 'string' && id.length > 0 ? `tasks[${path[1]}] ("${id}")` : `tasks[${path[1]}]`
  const rest = path.length > 2 ? formatKeyPath(path.slice(2)) : ''
  return rest === '' ? task : rest.startsWith('[') ? `${task}${rest}` : `${task}.${rest}`
}

export function taskPath(data: unknown, index: number): IssueFormatOptions {
  return { formatPath: (path) => formatPlanPath(data, ['tasks', index, ...path]) }
}

function invalid(field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Invalid plan: \`${field}\` is ${describeValue(value)}: expected ${allowed}`)
}
