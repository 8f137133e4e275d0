import { firstOverlap } from '../plan/claim-patterns.ts'
import { criticalPath, dependencyLevels, descendants } from '../plan/graph.ts'
import type { CompiledPlan, PlanStrategy, Strategy } from '../plan/plan.ts'
import { estimatedDurations } from './scheduler.ts'
import { simulate } from './simulate.ts'

export interface AnalysisOptions {
  /** Slots the plan would run on. */
  readonly maxParallel: number
  /** @default plan.strategy ?? 'concurrent' */
  readonly strategy?: Strategy
  /** What tasks took in earlier runs, by id (ms): used for tasks without `estimateMs`. */
  readonly history?: ReadonlyMap<string, number>
}

/** Two tasks whose claims overlap and that no dependency orders: they will never run at once. */
export interface ClaimConflict {
  readonly tasks: readonly [string, string]
  /** The overlapping claims, one of each task. */
  readonly claims: readonly [string, string]
}

/** What `troupe plan` reports. Durations are estimates, in ms. */
export interface PlanAnalysis {
  readonly name: string
  readonly tasks: number
  readonly dependencies: number
  /** The strategy analysed (the option, else the plan's): `hybrid` for a plan of declared stages, as it runs. */
  readonly strategy: PlanStrategy
  readonly maxParallel: number
  /** Task ids by dependency level: level 0 has no dependencies. */
  readonly levels: readonly (readonly string[])[]
  readonly criticalPath: { readonly ids: readonly string[]; readonly ms: number }
  /** How many tasks have `estimateMs`; the others count as their past duration, else `defaultEstimateMs` (the median, or 1). */
  readonly estimated: number
  /** How many tasks without `estimateMs` are estimated from earlier journaled runs. */
  readonly measured: number
  readonly defaultEstimateMs: number
  /** Sum of the estimates: the makespan one slot at a time. */
  readonly sequentialMs: number
  /** max(critical path, sequentialMs / maxParallel): no schedule is shorter. */
  readonly lowerBoundMs: number
  /** Simulated makespan with the chosen strategy at maxParallel. */
  readonly makespanMs: number
  /** Simulated makespan with the `waves` strategy at maxParallel, for comparison. */
  readonly wavesMakespanMs: number
  /** sequentialMs / makespanMs */
  readonly speedup: number
  readonly claimConflicts: readonly ClaimConflict[]
}

/**
 * Analyses a compiled (hence valid, acyclic) plan without running it: levels, critical
 * path, and the schedule the real scheduler would produce on a virtual clock, with each
 * task taking its estimate.
 */
export function analyzePlan(plan: CompiledPlan, options: AnalysisOptions): PlanAnalysis {
  const strategy = options.strategy ?? plan.strategy ?? 'concurrent'
  const maxParallel = strategy === 'sequential' ? 1 : options.maxParallel
  const durations = estimatedDurations(plan)
  let measured = 0
  if (options.history !== undefined && options.history.size > 0) {
    for (const task of plan.tasks) {
      const past = task.estimateMs === undefined ? options.history.get(task.id) : undefined
      if (past === undefined) continue
      durations[task.index] = past
      measured++
    }
  }
  const ids = plan.tasks.map((t) => t.id)

  const level = dependencyLevels(plan, plan.order)
  const levels: string[][] = []
  for (const task of plan.order) (levels[level[task]!] ??= []).push(ids[task]!)

  const path = criticalPath(plan, plan.order, (i) => durations[i]!)
  let sequentialMs = 0
  let dependencies = 0
  let estimated = 0
  for (const task of plan.tasks) {
    sequentialMs += durations[task.index]!
    dependencies += task.deps.length
    if (task.estimateMs !== undefined) estimated++
  }
  const makespanMs = simulate(plan, { workers: maxParallel, strategy, durations }).makespanMs
  const wavesMakespanMs = strategy === 'waves' ? makespanMs : simulate(plan, { workers: maxParallel, strategy: 'waves', durations }).makespanMs
  return {
    name: plan.name,
    tasks: plan.tasks.length,
    dependencies,
    strategy,
    maxParallel,
    levels,
    criticalPath: { ids: path.nodes.map((i) => ids[i]!), ms: path.lengthMs },
    estimated,
    measured,
    defaultEstimateMs: estimated + measured === plan.tasks.length ? 0 : defaultEstimate(plan, durations, options.history),
    sequentialMs,
    lowerBoundMs: Math.max(path.lengthMs, sequentialMs / maxParallel),
    makespanMs,
    wavesMakespanMs,
    speedup: makespanMs === 0 ? 1 : sequentialMs / makespanMs,
    claimConflicts: claimConflicts(plan),
  }
}

function defaultEstimate(plan: CompiledPlan, durations: Float64Array, history: ReadonlyMap<string, number> | undefined): number {
  const task = plan.tasks.find((t) => t.estimateMs === undefined && !history?.has(t.id))
  return task === undefined ? 0 : durations[task.index]!
}

/**
 * Pairs of tasks whose static claims overlap and where neither depends (transitively) on
 * the other. Pairs ordered by a dependency never run at once anyway, so they are not
 * conflicts. Cost: overlap checks over pairs of claiming tasks, then one graph walk per
 * task involved in an overlap.
 */
export function claimConflicts(plan: CompiledPlan): ClaimConflict[] {
  const claiming = plan.tasks.filter((t) => t.claims.length > 0)
  const overlaps: { a: number; b: number; claims: readonly [string, string] }[] = []
  for (let x = 0; x < claiming.length; x++) {
    for (let y = x + 1; y < claiming.length; y++) {
      const pair = firstOverlap(claiming[x]!.claims, claiming[y]!.claims)
      if (pair) overlaps.push({ a: claiming[x]!.index, b: claiming[y]!.index, claims: pair })
    }
  }
  const reach = new Map<number, Set<number>>()
  const reachable = (from: number): Set<number> => {
    let seen = reach.get(from)
    if (seen === undefined) reach.set(from, (seen = new Set(descendants(plan, from))))
    return seen
  }
  return overlaps
    .filter(({ a, b }) => !reachable(a).has(b) && !reachable(b).has(a))
    .map(({ a, b, claims }) => ({ tasks: [plan.tasks[a]!.id, plan.tasks[b]!.id] as const, claims }))
}
