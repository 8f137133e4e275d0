import { resolve } from 'node:path'
import pc from 'picocolors'
import { readDemandFile, DEMAND_FILE } from '../runtime/governor/demand-file.ts'
import type { AgentDemand } from '../runtime/governor/demand.ts'
import { UNKNOWN_CPU } from '../runtime/admission/fit-policy.ts'
import { analyzePlan, type PlanAnalysis } from '../runtime/schedule/analysis.ts'
import { Limits } from '../runtime/admission/limits.ts'
import { systemClock } from '../runtime/core/clock.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { type CompiledPlan, type Strategy } from '../runtime/plan/plan.ts'
import { loadPlan } from '../runtime/plan/load-plan.ts'
import { checkRunStrategy } from '../runtime/plan/stages.ts'
import { pastDurations } from '../runtime/journal/past-durations.ts'
import { EXIT } from './exit-codes.ts'
import { formatMs } from './summary.ts'

export interface PlanCommandOptions {
  readonly maxParallel?: number
  readonly strategy?: Strategy
  readonly config?: string
  readonly json?: boolean
}

/** Lines and ids shown per section in the human report; `--json` has everything. */
const SHOWN = 20

/** What `troupe plan` shows beyond the schedule analysis: agent kinds, stages, conditions, labels. */
export interface PlanOutline {
  readonly agents: readonly { readonly name: string; readonly kind: string }[]
  /** `strategy: hybrid` only, in stage order. */
  readonly stages:
    | readonly {
        readonly name: string
        readonly parallel: boolean
        readonly maxParallel?: number
        readonly failFast?: boolean
        readonly tasks: number
      }[]
    | undefined
  /** Tasks with a `when` condition. */
  readonly conditions: readonly { readonly id: string; readonly when: string }[]
  /** Tasks with a `description` or `tags`. */
  readonly labels: readonly { readonly id: string; readonly description?: string; readonly tags: readonly string[] }[]
}

/**
 * `troupe plan <plan>`: validates and analyses a plan without running it. The report goes
 * to stderr, or with `--json` as one document on stdout. Config is loaded as `troupe run`
 * loads it, and the plan checked against it as `run` checks it, so whatever `run` would
 * reject (a cycle, a missing executable or API key, an undefined limit …) throws here too,
 * which the CLI reports with exit code 2.
 */
export async function planCommand(planFile: string, options: PlanCommandOptions): Promise<number> {
  const config = loadConfig({ file: options.config })
  const plan = loadPlan(planFile)
  const limits = new Limits(config.limits, systemClock, () => {})
  try {
    limits.check(plan)
  } finally {
    limits.close()
  }
  if (options.strategy !== undefined) checkRunStrategy(options.strategy, plan)
  const maxParallel = options.maxParallel ?? plan.maxParallel ?? config.maxParallel
  const history = pastDurations(resolve(config.checkpoint.dir), plan.name)
  const analysis = analyzePlan(plan, { maxParallel, history, ...(options.strategy === undefined ? {} : { strategy: options.strategy }) })
  const outline = outlinePlan(plan)
  const estimates = governorEstimates(plan, readDemandFile(resolve(config.checkpoint.dir)))
  const governor = { enabled: config.governor.enabled, estimates }
  if (options.json) process.stdout.write(`${JSON.stringify({ ...analysis, ...outline, governor })}\n`)
  else process.stderr.write(`${formatAnalysis(analysis)}\n${formatOutline(outline)}\n${formatEstimates(governor)}\n`)
  return EXIT.ok
}

/** The parts of a plan `troupe plan` shows besides its schedule. */
export function outlinePlan(plan: CompiledPlan): PlanOutline {
  const agents = new Map<string, string>()
  for (const task of plan.tasks) agents.set(task.agentSpec.name, task.agentSpec.kind)
  const stageTasks = new Map<string, number>()
  for (const task of plan.tasks) if (task.stage !== undefined) stageTasks.set(task.stage, (stageTasks.get(task.stage) ?? 0) + 1)
  return {
    agents: [...agents].map(([name, kind]) => ({ name, kind })),
    stages:
      plan.stages === undefined
        ? undefined
        : Object.values(plan.stages).map((s) => ({
            name: s.name,
            parallel: s.parallel,
            ...(s.maxParallel === undefined ? {} : { maxParallel: s.maxParallel }),
            ...(s.failFast === undefined ? {} : { failFast: s.failFast }),
            tasks: stageTasks.get(s.name) ?? 0,
          })),
    conditions: plan.tasks.flatMap((t) => (t.when === undefined ? [] : [{ id: t.id, when: t.when }])),
    labels: plan.tasks.flatMap((t) =>
      t.description === undefined && t.tags.length === 0
        ? []
        : [{ id: t.id, ...(t.description === undefined ? {} : { description: t.description }), tags: t.tags }],
    ),
  }
}

/** What the governor expects one attempt of an agent to use; `none`: never measured nor declared. */
export interface AgentEstimate {
  readonly agent: string
  readonly cpu?: number
  readonly memoryMb?: number
  readonly source: 'measured' | 'plan' | 'none'
  /** Attempts measured (0 for `plan` and `none`). */
  readonly samples: number
}

/**
 * Per agent of `plan`: the demand troupe measured in earlier runs of this project (`measured`,
 * from `<checkpoint.dir>/demand.json`), else the first `resources` a task of it declares
 * (`plan`), else `none` — as the governor would start the run.
 */
export function governorEstimates(plan: CompiledPlan, measured: Readonly<Record<string, AgentDemand>>): AgentEstimate[] {
  const out = new Map<string, AgentEstimate>()
  for (const task of plan.tasks) {
    const agent = task.agentSpec.name
    const known = out.get(agent)
    if (known !== undefined && known.source !== 'none') continue
    const stored = measured[agent]
    if (stored !== undefined) {
      const memory = stored.memoryMb === undefined ? {} : { memoryMb: stored.memoryMb }
      out.set(agent, { agent, cpu: stored.cpu, ...memory, source: 'measured', samples: stored.samples })
    } else if (task.resources?.cpu !== undefined) {
      const memory = task.resources.memoryMb === undefined ? {} : { memoryMb: task.resources.memoryMb }
      out.set(agent, { agent, cpu: task.resources.cpu, ...memory, source: 'plan', samples: 0 })
    } else {
      out.set(agent, { agent, source: 'none', samples: 0 })
    }
  }
  return [...out.values()]
}

/** "governor estimates per attempt", one line per agent. */
export function formatEstimates(governor: { readonly enabled: boolean; readonly estimates: readonly AgentEstimate[] }): string {
  const width = Math.max(0, ...governor.estimates.map((e) => e.agent.length))
  const unused = governor.enabled ? '' : ' — governor.enabled is false: not used'
  const lines = [`governor estimates per attempt (measured: ${DEMAND_FILE} in the checkpoint dir; plan: resources)${unused}:`]
  for (const e of governor.estimates.slice(0, SHOWN)) {
    if (e.source === 'none') {
      lines.push(`  ${e.agent.padEnd(width)}  not measured yet: counted as ~${UNKNOWN_CPU.toFixed(1)} CPU until a reading shows otherwise`)
      continue
    }
    const memory = e.memoryMb === undefined ? '' : `  ~${Math.round(e.memoryMb)} MB`
    const origin = e.source === 'plan' ? 'plan' : `measured, ${e.samples} attempt${e.samples === 1 ? '' : 's'}`
    lines.push(`  ${e.agent.padEnd(width)}  ~${e.cpu!.toFixed(1)} CPU${memory}  (${origin})`)
  }
  if (governor.estimates.length > SHOWN) lines.push(`  … ${governor.estimates.length - SHOWN} more`)
  return lines.join('\n')
}

/** The human-readable part of {@link outlinePlan}. */
export function formatOutline(o: PlanOutline): string {
  const lines = [`agents: ${list(o.agents.map((a) => `${a.name} (${a.kind})`))}`]
  if (o.stages !== undefined) {
    lines.push(`stages (hybrid, in this order): ${o.stages.length}`)
    for (const s of o.stages.slice(0, SHOWN)) {
      const rule = [
        s.parallel ? 'parallel' : 'sequential',
        ...(s.maxParallel === undefined ? [] : [`maxParallel ${s.maxParallel}`]),
        ...(s.failFast ? ['failFast'] : []),
      ]
      lines.push(`  ${s.name}: ${s.tasks} tasks, ${rule.join(', ')}`)
    }
  }
  if (o.conditions.length > 0) {
    lines.push(`conditional tasks: ${o.conditions.length}`)
    for (const c of o.conditions.slice(0, SHOWN)) lines.push(`  ${c.id}: when ${c.when}`)
    if (o.conditions.length > SHOWN) lines.push(`  … ${o.conditions.length - SHOWN} more`)
  }
  if (o.labels.length > 0) {
    lines.push('tasks:')
    for (const l of o.labels.slice(0, SHOWN)) {
      lines.push(`  ${l.id}${l.tags.length > 0 ? ` [${l.tags.join(', ')}]` : ''}${l.description === undefined ? '' : `: ${l.description}`}`)
    }
    if (o.labels.length > SHOWN) lines.push(`  … ${o.labels.length - SHOWN} more`)
  }
  return lines.join('\n')
}

/** The human-readable report of {@link planCommand}. */
export function formatAnalysis(a: PlanAnalysis): string {
  const lines = [
    pc.bold(
      `troupe plan: "${a.name}" — ${a.tasks} tasks, ${a.dependencies} dependencies, strategy ${a.strategy}, maxParallel ${a.maxParallel}`,
    ),
  ]
  lines.push(`dependency levels: ${a.levels.length}`)
  for (const [level, ids] of a.levels.slice(0, SHOWN).entries()) lines.push(`  ${String(level).padStart(3)}: ${list(ids)}`)
  if (a.levels.length > SHOWN) lines.push(`  … ${a.levels.length - SHOWN} more levels`)
  lines.push(`critical path: ${formatMs(a.criticalPath.ms)}, ${a.criticalPath.ids.length} tasks: ${list(a.criticalPath.ids, ' → ')}`)
  lines.push(
    `estimated makespan at maxParallel ${a.maxParallel}: ${formatMs(a.makespanMs)} (lower bound ${formatMs(a.lowerBoundMs)}), ` +
      `sequential ${formatMs(a.sequentialMs)} (${a.speedup.toFixed(2)}x), waves ${formatMs(a.wavesMakespanMs)}` +
      (a.makespanMs > 0 ? ` (${percent(a.wavesMakespanMs / a.makespanMs - 1)})` : ''),
  )
  if (a.measured > 0) {
    lines.push(pc.dim(`${a.measured} of ${a.tasks} tasks without estimateMs are estimated from earlier journaled runs (median duration)`))
  }
  if (a.estimated + a.measured < a.tasks) {
    const rest = a.tasks - a.estimated - a.measured
    const fallback = `${formatMs(a.defaultEstimateMs)} (the median estimate, or 1 ms when there is none)`
    lines.push(pc.dim(`${rest} of ${a.tasks} tasks have no estimateMs and no past run; they count as ${fallback}`))
  }
  if (a.claimConflicts.length === 0) {
    lines.push('claim conflicts: none')
  } else {
    lines.push(`claim conflicts: ${a.claimConflicts.length} (these tasks will not run at the same time)`)
    for (const c of a.claimConflicts.slice(0, SHOWN)) lines.push(`  "${c.tasks[0]}" (${c.claims[0]}) and "${c.tasks[1]}" (${c.claims[1]})`)
    if (a.claimConflicts.length > SHOWN) lines.push(`  … ${a.claimConflicts.length - SHOWN} more`)
  }
  return lines.join('\n')
}

function list(ids: readonly string[], separator = ', '): string {
  return ids.length <= SHOWN ? ids.join(separator) : `${ids.slice(0, SHOWN).join(separator)}${separator}… (${ids.length - SHOWN} more)`
}

function percent(ratio: number): string {
  return `${ratio >= 0 ? '+' : ''}${(ratio * 100).toFixed(1)} %`
}
