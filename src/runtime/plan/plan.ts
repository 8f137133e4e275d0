import * as Schema from 'effect/Schema'
import { didYouMean } from '../core/did-you-mean.ts'
import { TroupeError, describeValue } from '../core/errors.ts'
import { formatKeyPath, valueOrThrow, type IssueFormatOptions } from '../core/schema-errors.ts'
import type { AgentSpec } from './agent-spec.ts'
import { checkTemplates, resolveAgentPath, resolveAgents } from './agent-links.ts'
import type { AgentEnvironment } from './agents.ts'
import { checkCondition } from './condition.ts'
import type { Graph } from './graph.ts'
import { checkInputGlobs } from './input-globs.ts'
import { linkTasks } from './link-tasks.ts'
import { leanTask } from './lean-task.ts'
import { checkStageDependencies } from './stages.ts'
import { PlanSchema, TaskSchema, type PlanStrategy, type Priority, type StageFields, type Strategy, type TaskFields } from './plan-schema.ts'
import { parseWorkspaceSpec, type PlanWorkspace, type PlanWorkspaceFields } from './workspace-spec.ts'
import type { ApprovalPoint } from './plan-schema.ts'

export { PRIORITIES, STRATEGIES, PLAN_STRATEGIES, MAX_PARALLEL, MAX_TIMEOUT_MS, MAX_INPUT_DEPTH } from './plan-schema.ts'
export type { Priority, Strategy, PlanStrategy, ApprovalPoint } from './plan-schema.ts'

/** One task of a plan, as written by the user (docs/plans.md): the fields of `TaskSchema` (plan-schema.ts), declared there once. */
export type TaskSpec = TaskFields

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

/** Task fields a compiled task fills in when they are not given: `priority` 'medium', the lists empty, `cache` the plan's. */
type DefaultedField = 'priority' | 'claims' | 'uses' | 'tags' | 'inputs' | 'cache'
/**
 * Task fields a compiled task replaces: `dependsOn` by `deps` (indices), `workspace`, `repair`
 * and `check` by the plan's `workspaces`, `approve` by `approval` (where its gate holds it).
 */
type ReplacedField = 'dependsOn' | 'workspace' | 'repair' | 'check' | 'approve'
type OptionalKey<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T]
/** Every field present: the optional ones as given, or undefined. */
type AsWritten<T> = { readonly [K in Exclude<keyof T, OptionalKey<T>>]: T[K] } & { readonly [K in OptionalKey<T>]: T[K] | undefined }

/**
 * A validated task, with its links resolved to indices. Its task fields derive from
 * `TaskSpec` (so from `TaskSchema`): as written, defaulted or replaced.
 */
export interface CompiledTask
  extends AsWritten<Omit<TaskSpec, DefaultedField | ReplacedField>>,
    Readonly<Required<Pick<TaskSpec, DefaultedField>>> {
  readonly index: number
  /** `file:` URL of the agent module (module agents; '' for other kinds). */
  readonly moduleUrl: string
  /** The compiled agent definition: its kind and how to run it. */
  readonly agentSpec: AgentSpec
  readonly deps: readonly number[]
  readonly dependents: readonly number[]
  /** The task as written, for journals and reports. */
  readonly spec: TaskSpec
  /** Tasks added at run time: the id of the task that added them (absent for `Run.addTasks`, and for the plan's own). */
  readonly parent?: string
  /** True for a task added at run time (`ctx.spawn`, `add_tasks`, `Run.addTasks`). */
  readonly added?: true
  /** Where an `approve` gate holds the task (`true` resolved by its workspace); undefined: no gate. */
  readonly approval: ApprovalPoint | undefined
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
  /** The strategy to run with. A `hybrid` plan stays `hybrid`, with {@link CompiledPlan.stages} set. */
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

  const { deps, dependents, order } = linkTasks(parsed, {
    byId,
    messages: {
      unknownDependency: (task, depId) =>
        `Task "${parsed[task]!.id}" depends on "${depId}", which is not a task of this plan${didYouMean(depId, byId.keys())}`,
      selfDependency: (task) => `Plan has a cycle: ${parsed[task]!.id} → ${parsed[task]!.id} (task depends on itself)`,
      cycle: (path) => `Plan has a cycle: ${path.map((i) => parsed[i]!.id).join(' → ')}`,
    },
  })

  if (plan.strategy === 'pipeline' || hybrid) checkStageDependencies({ tasks: parsed, stages: plan.stages, deps })

  const workspaceDefault = (data as { workspace?: unknown }).workspace === 'worktree' ? 'worktree' : 'none'
  const linker: TaskLinker = { agents, environment, baseDir, workspace: workspaceDefault, cache: plan.cache ?? false }
  const tasks = parsed.map((spec, index) => compileTask(spec, index, deps[index]!, dependents[index]!, linker))

  const workspaces = parseWorkspaceSpec(data as Record<string, unknown>, plan.tasks)
  return {
    name: plan.name ?? 'plan',
    strategy: plan.strategy,
    maxParallel: plan.maxParallel,
    stages,
    tasks,
    byId,
    order,
    deps,
    dependents,
    baseDir,
    linker,
    ...(workspaces ? { workspaces } : {}),
  }
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
    claims: spec.claims ?? NONE,
    uses: spec.uses ?? NONE,
    stage: spec.stage,
    description: spec.description,
    tags: spec.tags ?? NONE,
    resources: spec.resources,
    when: spec.when,
    approval: approvalPoint(spec, linker, where),
    cache: spec.cache ?? linker.cache ?? false,
    inputs: spec.inputs ?? NONE,
    spec,
  }
}

/** A defaulted list field left out: one frozen array shared by every task. */
const NONE: readonly string[] = Object.freeze([])

/** Resolves a task's `approve`: `true` is `merge` in a worktree (what a person reviews is the diff), `start` otherwise. */
function approvalPoint(spec: TaskFields, linker: TaskLinker, where: string): ApprovalPoint | undefined {
  const approve = spec.approve
  if (approve === undefined || approve === false) return undefined
  const worktree = (spec.workspace ?? linker.workspace) === 'worktree'
  if (approve === true) return worktree ? 'merge' : 'start'
  if (approve.before === 'merge' && !worktree) {
    const allowed = '"start" (only a task with `workspace: "worktree"` has a merge to approve)'
    throw invalid(`${where} ("${spec.id}").approve.before`, approve.before, allowed)
  }
  return approve.before
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
