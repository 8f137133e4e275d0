import { TroupeError, describeValue } from '../core/errors.ts'
import { isProcessAgent, type AgentSpec } from './agent-spec.ts'
import { compileAgent, type AgentEnvironment } from './agents.ts'
import { dependencyRefs, parseTemplate } from './templates.ts'
import { findCycle, topologicalOrder, type Graph } from './graph.ts'
import { parseWorkspaceSpec, type PlanWorkspace, type PlanWorkspaceFields, type TaskWorkspaceFields } from './workspace-spec.ts'

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]

export const STRATEGIES = ['concurrent', 'sequential', 'pipeline', 'waves'] as const
export type Strategy = (typeof STRATEGIES)[number]

/** One task of a plan, as written by the user (DESIGN.md "Plan"). */
export interface TaskSpec extends TaskWorkspaceFields {
  /** Unique within the plan. */
  readonly id: string
  /** A key of `plan.agents`, or a module path (`./agents/x.mjs`) relative to the plan. */
  readonly agent: string
  /** Any structured-clone-able value, handed to the agent as its first argument. */
  readonly input?: unknown
  /** Ids of the tasks that must COMPLETE before this one starts. */
  readonly dependsOn?: readonly string[]
  /** @default 'medium' */
  readonly priority?: Priority
  /** Per attempt. @default config.timeoutMs */
  readonly timeoutMs?: number
  /** Extra attempts after the first. @default config.retry.maxRetries */
  readonly retries?: number
  /** Expected duration, for critical-path ordering and estimates. */
  readonly estimateMs?: number
  /** Files or resources it writes (paths or globs): overlapping claims never run at once. */
  readonly claims?: readonly string[]
  /** Named limits (config.limits) it holds one unit of while it runs. */
  readonly uses?: readonly string[]
  /** Pipeline strategy: stages run in order of first appearance. */
  readonly stage?: string
}

/** A plan: a set of agent tasks with dependencies (DESIGN.md "Plan"). */
export interface Plan extends PlanWorkspaceFields {
  readonly name?: string
  /** @default 'concurrent' */
  readonly strategy?: Strategy
  /** Overrides config.maxParallel for runs of this plan. */
  readonly maxParallel?: number
  /** Agent name → ES module path relative to the plan file (or `baseDir`), or a built-in kind (DESIGN.md "Agent kinds"). */
  readonly agents?: Readonly<Record<string, string | Readonly<Record<string, unknown>>>>
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
  /** The task as written, for journals and reports. */
  readonly spec: TaskSpec
}

/** A validated, acyclic plan. Immutable. */
export interface CompiledPlan extends Graph {
  readonly name: string
  readonly strategy: Strategy | undefined
  readonly maxParallel: number | undefined
  readonly tasks: readonly CompiledTask[]
  readonly byId: ReadonlyMap<string, number>
  /** A topological order; ties keep plan order. */
  readonly order: readonly number[]
  /** Directory agent paths were resolved against. */
  readonly baseDir: string
  /** Git worktree settings (workspace-spec.ts); absent when no task uses a worktree. */
  readonly workspaces?: PlanWorkspace
}

export interface CompileOptions {
  /** Directory that relative agent paths resolve against. @default process.cwd() */
  readonly baseDir?: string
}

export interface LinkOptions {
  /** Absolute directory that relative agent paths resolve against. */
  readonly baseDir: string
  /** Finds modules and executables, checks API-key variables. Injected, so linking does no I/O. */
  readonly environment: AgentEnvironment
}

/**
 * Validates a plan object and links it for execution (ids to indices, agents to modules
 * through `options.resolveModule`). Throws a TroupeError naming the field, the value
 * received and what is allowed.
 */
export function linkPlan(data: unknown, options: LinkOptions): CompiledPlan {
  const { baseDir, environment } = options
  const plan = expectObject(data, 'plan')
  const name = optionalString(plan.name, 'name') ?? 'plan'
  const strategy = optionalEnum(plan.strategy, 'strategy', STRATEGIES)
  const maxParallel = optionalInteger(plan.maxParallel, 'maxParallel', 1)
  const agents = resolveAgents(plan.agents, baseDir, environment)

  if (!Array.isArray(plan.tasks)) {
    throw invalid('tasks', plan.tasks, 'an array of tasks')
  }
  const specs = plan.tasks as unknown[]
  const byId = new Map<string, number>()
  const parsed = specs.map((raw, index) => {
    const spec = parseTask(raw, index)
    if (byId.has(spec.id)) {
      throw new TroupeError(
        'ERR_PLAN_DUPLICATE_ID',
        `Plan has two tasks with id "${spec.id}" (tasks[${byId.get(spec.id)}] and tasks[${index}]); task ids must be unique`,
      )
    }
    byId.set(spec.id, index)
    return spec
  })

  const deps: number[][] = parsed.map(() => [])
  const dependents: number[][] = parsed.map(() => [])
  parsed.forEach((spec, index) => {
    const seen = new Set<number>()
    for (const depId of spec.dependsOn ?? []) {
      const dep = byId.get(depId)
      if (dep === undefined) {
        throw new TroupeError(
          'ERR_PLAN_UNKNOWN_DEPENDENCY',
          `Task "${spec.id}" depends on "${depId}", which is not a task of this plan${suggest(depId, byId.keys())}`,
        )
      }
      if (dep === index) {
        throw new TroupeError('ERR_PLAN_CYCLE', `Plan has a cycle: ${spec.id} → ${spec.id} (task depends on itself)`)
      }
      if (seen.has(dep)) continue
      seen.add(dep)
      deps[index]!.push(dep)
      dependents[dep]!.push(index)
    }
  })

  const graph = { deps, dependents }
  const order = topologicalOrder(graph)
  if (order === undefined) {
    const cycle = findCycle(graph)!
    throw new TroupeError('ERR_PLAN_CYCLE', `Plan has a cycle: ${cycle.map((i) => parsed[i]!.id).join(' → ')}`)
  }

  const tasks = parsed.map((spec, index): CompiledTask => {
    let agentSpec = agents.get(spec.agent)
    if (agentSpec === undefined) {
      // Cache module paths given inline, so a 100,000-task plan checks each file once.
      agentSpec = resolveAgentPath(spec.agent, baseDir, `tasks[${index}].agent`, agents, environment)
      agents.set(spec.agent, agentSpec)
    }
    if (agentSpec.kind !== 'module') checkTemplates(spec, agentSpec, index)
    const moduleUrl = agentSpec.kind === 'module' ? agentSpec.moduleUrl : ''
    return {
      index,
      id: spec.id,
      agent: spec.agent,
      moduleUrl,
      agentSpec,
      input: spec.input,
      deps: deps[index]!,
      dependents: dependents[index]!,
      priority: spec.priority ?? 'medium',
      timeoutMs: spec.timeoutMs,
      retries: spec.retries,
      estimateMs: spec.estimateMs,
      claims: spec.claims ?? [],
      uses: spec.uses ?? [],
      stage: spec.stage,
      spec,
    }
  })

  const workspaces = parseWorkspaceSpec(plan, specs)
  return { name, strategy, maxParallel, tasks, byId, order, deps, dependents, baseDir, ...(workspaces ? { workspaces } : {}) }
}

function resolveAgents(value: unknown, baseDir: string, environment: AgentEnvironment): Map<string, AgentSpec> {
  const agents = new Map<string, AgentSpec>()
  if (value === undefined) return agents
  const record = expectObject(value, 'agents')
  for (const [name, entry] of Object.entries(record)) agents.set(name, compileAgent(name, entry, baseDir, environment))
  return agents
}

/**
 * Process and LLM agents: the task's `input.prompt` (CLI and LLM kinds) must be a string,
 * and every `{{deps.ID…}}` in the agent's templates or the prompt must name a dependency.
 */
function checkTemplates(spec: TaskSpec, agent: Exclude<AgentSpec, { kind: 'module' }>, index: number): void {
  const where = `tasks[${index}] ("${spec.id}")`
  const templates: [string, string][] = []
  if (agent.kind === 'command') {
    const run = typeof agent.run === 'string' ? [agent.run] : agent.run
    run.forEach((arg, i) => templates.push([`agents.${agent.name}.run[${i}]`, arg]))
  } else {
    const prompt = (spec.input as { prompt?: unknown } | null | undefined)?.prompt
    if (typeof prompt !== 'string' || prompt.length === 0) {
      throw invalid(`${where}.input.prompt`, prompt, `a prompt string (agent "${agent.name}" is of kind ${agent.kind})`)
    }
    templates.push([`${where}.input.prompt`, prompt])
    if (isProcessAgent(agent)) agent.args.forEach((arg, i) => templates.push([`agents.${agent.name}.args[${i}]`, arg]))
  }
  if (isProcessAgent(agent)) {
    if (agent.cwd !== undefined) templates.push([`agents.${agent.name}.cwd`, agent.cwd])
    for (const [key, value] of Object.entries(agent.env)) templates.push([`agents.${agent.name}.env.${key}`, value])
  }
  const deps = new Set(spec.dependsOn ?? [])
  for (const [field, template] of templates) {
    for (const dep of dependencyRefs(parseTemplate(template, field))) {
      if (!deps.has(dep)) {
        throw new TroupeError('ERR_PLAN_INVALID', `Plan field \`${field}\` reads {{deps.${dep}…}}, but "${dep}" is not a dependency of task "${spec.id}"; add it to \`${where}.dependsOn\``)
      }
    }
  }
}

function resolveAgentPath(agent: string, baseDir: string, field: string, agents: Map<string, AgentSpec>, environment: AgentEnvironment): AgentSpec {
  if (!looksLikePath(agent)) {
    const known = [...agents.keys()]
    throw new TroupeError(
      'ERR_PLAN_UNKNOWN_AGENT',
      `${field} is "${agent}", which is not declared in plan.agents (${known.length > 0 ? `declared: ${known.join(', ')}` : 'none declared'})${suggest(agent, known)}; declare it or give a module path such as ./agents/${agent}.mjs`,
    )
  }
  return { kind: 'module', name: agent, moduleUrl: environment.resolveModule(agent, baseDir, agent) }
}

function looksLikePath(agent: string): boolean {
  return agent.startsWith('.') || agent.startsWith('/') || agent.startsWith('file:') || /\.(m?js|ts|mts)$/.test(agent)
}

function parseTask(raw: unknown, index: number): TaskSpec {
  const at = `tasks[${index}]`
  const task = expectObject(raw, at)
  const id = task.id
  if (typeof id !== 'string' || id.length === 0) throw invalid(`${at}.id`, id, 'a non-empty string')
  const where = `tasks[${index}] ("${id}")`
  const agent = task.agent
  if (typeof agent !== 'string' || agent.length === 0) throw invalid(`${where}.agent`, agent, 'an agent name or module path')
  for (const key of Object.keys(task)) {
    if (!TASK_KEYS.has(key)) {
      throw new TroupeError(
        'ERR_PLAN_INVALID',
        `Plan field \`${where}.${key}\` is not a task key${suggest(key, TASK_KEYS)}; allowed keys: ${[...TASK_KEYS].join(', ')}`,
      )
    }
  }
  return {
    id,
    agent,
    input: task.input,
    dependsOn: optionalStringArray(task.dependsOn, `${where}.dependsOn`),
    priority: optionalEnum(task.priority, `${where}.priority`, PRIORITIES),
    timeoutMs: optionalInteger(task.timeoutMs, `${where}.timeoutMs`, 1),
    retries: optionalInteger(task.retries, `${where}.retries`, 0),
    estimateMs: optionalNumber(task.estimateMs, `${where}.estimateMs`, 0),
    claims: optionalStringArray(task.claims, `${where}.claims`),
    uses: optionalStringArray(task.uses, `${where}.uses`),
    stage: optionalString(task.stage, `${where}.stage`),
  }
}

const TASK_KEYS = new Set(['id', 'agent', 'input', 'dependsOn', 'priority', 'timeoutMs', 'retries', 'estimateMs', 'claims', 'uses', 'stage', 'workspace'])

function invalid(field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Plan field \`${field}\` is ${describeValue(value)}; expected ${allowed}`)
}

function expectObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, value, 'an object')
  return value as Record<string, unknown>
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw invalid(field, value, 'a string')
  return value
}

function optionalStringArray(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw invalid(field, value, 'an array of strings')
  return value as string[]
}

function optionalEnum<T extends string>(value: unknown, field: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined
  if (!allowed.includes(value as T)) throw invalid(field, value, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`)
  return value as T
}

function optionalInteger(value: unknown, field: string, minimum: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw invalid(field, value, `an integer >= ${minimum}`)
  }
  return value
}

function optionalNumber(value: unknown, field: string, minimum: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum) throw invalid(field, value, `a number >= ${minimum}`)
  return value
}

function suggest(name: string, candidates: Iterable<string>): string {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1
  for (const candidate of candidates) {
    const d = editDistance(name, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}
