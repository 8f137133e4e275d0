import type { SerializedError } from '../runtime/core/errors.ts'
import type { RunResult, RunTotals, TaskResult } from '../runtime/report/result.ts'
import { effectiveParallelism, speedupFigures, workMs } from '../runtime/schedule/speedup.ts'
import type { CompiledPlan, Strategy } from '../runtime/plan/plan.ts'
import type { GovernorReport } from '../runtime/governor/governor.ts'
import type { UsageSummary } from '../runtime/admission/usage.ts'
import { runStatus, type StopReason } from './run-lifecycle.ts'
import type { TaskContext, TaskState } from './task-machine.ts'

/** The record a task leaves behind when its actor is released: all a result needs. */
export function taskResult(state: TaskState, context: TaskContext): TaskResult {
  // Built field by field: 100,000 of these are made per large run, and spreads of
  // conditional objects would allocate three temporaries each.
  const result: { -readonly [K in keyof TaskResult]: TaskResult[K] } = { state, attempts: context.attempt }
  if (context.startedAt !== undefined) {
    result.startedAt = context.startedAt
    result.finishedAt = context.finishedAt
    result.durationMs = context.busyMs
  }
  if (state === 'COMPLETED') result.output = context.output
  if (context.error) result.error = context.error
  if (context.reused) result.reused = true
  if (context.cached) result.cached = true
  return result
}

export interface RunSummary {
  readonly runId: string
  readonly plan: CompiledPlan
  readonly strategy: Strategy
  readonly maxParallel: number
  readonly startedAt: number
  readonly finishedAt: number
  /** One record per plan task, by index; every task has ended. */
  readonly results: readonly TaskResult[]
  readonly usage: UsageSummary
  readonly governor: GovernorReport | undefined
  /** Why the run stopped early, if it did. */
  readonly reason: StopReason | undefined
  /** Most tasks RUNNING at once. */
  readonly peakConcurrency: number
}

/** Counts tasks by how they ended. */
export function countTotals(results: readonly TaskResult[]): RunTotals {
  const totals = { tasks: results.length, completed: 0, failed: 0, skipped: 0, cancelled: 0, reused: 0, cached: 0 }
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    if (r.state === 'COMPLETED') totals.completed++
    else if (r.state === 'FAILED') totals.failed++
    else if (r.state === 'SKIPPED') totals.skipped++
    else if (r.state === 'CANCELLED') totals.cancelled++
    if (r.reused) totals.reused++
    if (r.cached) totals.cached++
  }
  return totals
}

/**
 * Assembles the RunResult. `tasks` is keyed by user-chosen ids, so it has no prototype: a
 * task named `__proto__` or `constructor` is a task like any other.
 */
export function assembleResult(summary: RunSummary): RunResult {
  const { plan, results, reason } = summary
  const totals = countTotals(results)
  const parallelism = effectiveParallelism(summary.maxParallel, summary.governor)
  const { parallelization, ...speedup } = speedupFigures(plan, plan.order, results, parallelism, summary.peakConcurrency)
  const skippedByCondition = conditionSkips(results)
  const meant = totals.tasks - skippedByCondition
  const tasks = Object.create(null) as Record<string, TaskResult>
  for (let i = 0; i < results.length; i++) {
    const task = plan.tasks[i]!
    tasks[task.id] = task.added ? { ...results[i]!, added: true, ...(task.parent === undefined ? {} : { parent: task.parent }) } : results[i]!
  }
  return {
    runId: summary.runId,
    name: plan.name,
    status: runStatus(reason, totals.completed + skippedByCondition === totals.tasks),
    strategy: summary.strategy,
    maxParallel: summary.maxParallel,
    startedAt: summary.startedAt,
    finishedAt: summary.finishedAt,
    ...speedup,
    ...(hasVerdict(reason) ? { parallelization } : {}),
    timeSavedMs: speedup.sequentialMs - speedup.makespanMs,
    // Tasks skipped by their own `when` were not meant to run: neither success nor failure.
    successRate: meant === 0 ? 1 : Math.round((totals.completed / meant) * 1000) / 1000,
    peakConcurrency: summary.peakConcurrency,
    agentUtilization: agentUtilization(plan, results, speedup.makespanMs),
    totals,
    tasks,
    usage: summary.usage,
    ...(summary.governor ? { governor: summary.governor } : {}),
    ...(reason ? { error: reason.error } : {}),
  }
}

/** A cancelled (or budget-paused) run, or one whose agents did not load, says nothing about parallelism: no verdict. */
function hasVerdict(reason: StopReason | undefined): boolean {
  if (reason === undefined) return true
  return reason.kind !== 'cancel' && reason.kind !== 'budget-pause' && reason.error.code !== 'ERR_AGENT_LOAD'
}

/** Per agent: busy time of its tasks / makespan, rounded to 3 decimals (0 when nothing ran). */
function agentUtilization(plan: CompiledPlan, results: readonly TaskResult[], makespanMs: number): Record<string, number> {
  const busy = Object.create(null) as Record<string, number>
  for (let i = 0; i < results.length; i++) {
    const agent = plan.tasks[i]!.agent
    busy[agent] = (busy[agent] ?? 0) + workMs(results[i]!)
  }
  for (const agent in busy) busy[agent] = makespanMs > 0 ? Math.round((busy[agent]! / makespanMs) * 1000) / 1000 : 0
  return busy
}

/** Tasks skipped by a `when` condition (directly or through a dependency): they count as success. */
function conditionSkips(results: readonly TaskResult[]): number {
  let n = 0
  for (let i = 0; i < results.length; i++) if (results[i]!.state === 'SKIPPED' && results[i]!.error?.code === 'ERR_CONDITION_FALSE') n++
  return n
}

/** The error of a task skipped because `failedDeps` (quoted ids with states) did not complete, or for pipeline fail-fast. */
export function skipError(failedDeps: readonly string[]): SerializedError {
  return {
    code: 'ERR_DEPENDENCY_FAILED',
    message: failedDeps.length > 0 ? `Skipped: dependency ${failedDeps.join(', ')} did not complete` : 'Skipped: an earlier stage failed (pipeline fail-fast)',
  }
}

