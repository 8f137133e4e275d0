import pc from 'picocolors'
import { analyzePlan, type PlanAnalysis } from '../runtime/schedule/analysis.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { type Strategy } from '../runtime/plan/plan.ts'
import { loadPlan } from '../runtime/plan/load-plan.ts'
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

/**
 * `troupe plan <plan>`: validates and analyses a plan without running it. The report goes
 * to stderr, or with `--json` as one document on stdout. An invalid plan (a cycle, an
 * unknown dependency …) throws, which the CLI reports with exit code 2.
 */
export async function planCommand(planFile: string, options: PlanCommandOptions): Promise<number> {
  const plan = loadPlan(planFile)
  const maxParallel = options.maxParallel ?? plan.maxParallel ?? loadConfig({ file: options.config }).maxParallel
  const analysis = analyzePlan(plan, { maxParallel, ...(options.strategy === undefined ? {} : { strategy: options.strategy }) })
  if (options.json) process.stdout.write(`${JSON.stringify(analysis)}\n`)
  else process.stderr.write(`${formatAnalysis(analysis)}\n`)
  return EXIT.ok
}

/** The human-readable report of {@link planCommand}. */
export function formatAnalysis(a: PlanAnalysis): string {
  const lines = [pc.bold(`troupe plan: "${a.name}" — ${a.tasks} tasks, ${a.dependencies} dependencies, strategy ${a.strategy}, maxParallel ${a.maxParallel}`)]
  lines.push(`dependency levels: ${a.levels.length}`)
  for (const [level, ids] of a.levels.slice(0, SHOWN).entries()) lines.push(`  ${String(level).padStart(3)}: ${list(ids)}`)
  if (a.levels.length > SHOWN) lines.push(`  … ${a.levels.length - SHOWN} more levels`)
  lines.push(`critical path: ${formatMs(a.criticalPath.ms)}, ${a.criticalPath.ids.length} tasks: ${list(a.criticalPath.ids, ' → ')}`)
  lines.push(
    `estimated makespan at maxParallel ${a.maxParallel}: ${formatMs(a.makespanMs)} (lower bound ${formatMs(a.lowerBoundMs)}), ` +
      `sequential ${formatMs(a.sequentialMs)} (${a.speedup.toFixed(2)}x), waves ${formatMs(a.wavesMakespanMs)}${a.makespanMs > 0 ? ` (${percent(a.wavesMakespanMs / a.makespanMs - 1)})` : ''}`,
  )
  if (a.estimated < a.tasks) {
    lines.push(pc.dim(`${a.tasks - a.estimated} of ${a.tasks} tasks have no estimateMs; they count as ${formatMs(a.defaultEstimateMs)} (the median estimate, or 1 ms when there is none)`))
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
