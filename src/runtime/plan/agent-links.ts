import { didYouMean } from '../core/did-you-mean.ts'
import { TroupeError, describeValue } from '../core/errors.ts'
import { isProcessAgent, type AgentSpec } from './agent-spec.ts'
import { compileAgent, type AgentEnvironment } from './agents.ts'
import { dependencyRefs, parseTemplate } from './templates.ts'

/**
 * Links a plan's tasks to their agents: the `agents` map compiled by name, module paths given
 * inline, and the templates a task's agent reads checked against the task's dependencies.
 */

/** The task fields linking reads. */
interface AgentTask {
  readonly id: string
  readonly input?: unknown
  readonly dependsOn?: readonly string[] | undefined
}

/** Agents by name, from the raw `agents` object (decoded as a record already), so a name like `__proto__` is data. */
export function resolveAgents(data: unknown, baseDir: string, environment: AgentEnvironment): Map<string, AgentSpec> {
  const agents = new Map<string, AgentSpec>()
  const record = (data as { agents?: Record<string, unknown> }).agents
  if (record === undefined) return agents
  for (const name of Object.keys(record)) agents.set(name, compileAgent(name, record[name], baseDir, environment))
  return agents
}

/**
 * Process and LLM agents: the task's `input.prompt` (CLI and LLM kinds) must be a string,
 * and every `{{deps.ID…}}` in the agent's templates or the prompt must name a dependency.
 */
export function checkTemplates(spec: AgentTask, agent: Exclude<AgentSpec, { kind: 'module' }>, at: number | string): void {
  const where = `${typeof at === 'number' ? `tasks[${at}]` : at} ("${spec.id}")`
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
        throw new TroupeError('ERR_PLAN_INVALID', `Invalid plan: \`${field}\` reads {{deps.${dep}…}}, but "${dep}" is not a dependency of task "${spec.id}"; add it to \`${where}.dependsOn\``)
      }
    }
  }
}

export function resolveAgentPath(agent: string, baseDir: string, field: string, agents: Map<string, AgentSpec>, environment: AgentEnvironment): AgentSpec {
  if (!looksLikePath(agent)) {
    const known = [...agents.keys()]
    throw new TroupeError(
      'ERR_PLAN_UNKNOWN_AGENT',
      `${field} is "${agent}", which is not declared in plan.agents (${known.length > 0 ? `declared: ${known.join(', ')}` : 'none declared'})${didYouMean(agent, known)}; declare it or give a module path such as ./agents/${agent}.mjs`,
    )
  }
  return { kind: 'module', name: agent, moduleUrl: environment.resolveModule(agent, baseDir, agent) }
}

function looksLikePath(agent: string): boolean {
  return agent.startsWith('.') || agent.startsWith('/') || agent.startsWith('file:') || /\.(m?js|ts|mts)$/.test(agent)
}

function invalid(field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Invalid plan: \`${field}\` is ${describeValue(value)}: expected ${allowed}`)
}
