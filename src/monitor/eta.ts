import { TERMINAL_STATES, type TaskState } from '../runtime/core/task-state.ts'
import { bottomLevels, type Graph } from '../runtime/plan/graph.ts'

/** What the estimate reads of a plan. A CompiledPlan fits. */
export interface EtaPlan extends Graph {
  readonly order: readonly number[]
  readonly tasks: readonly { readonly agent: string; readonly estimateMs: number | undefined }[]
}

/** What the estimate reads of a task. */
export interface EtaTask {
  readonly state: TaskState
  readonly reused: boolean
  /** From the task cache: its (near-zero) time says nothing about its agent. */
  readonly cached?: true
  /** Time spent in ended attempts. */
  readonly busyMs: number
  readonly fraction: number | undefined
  readonly intervals: readonly { readonly start: number; readonly end?: number }[]
}

/**
 * The longer of the remaining critical path and the remaining work spread over
 * maxParallel. A task's duration is the mean observed for its agent, else its
 * `estimateMs`, else the mean observed over all agents (or, before anything finished,
 * extrapolated from running tasks' progress); a running task's remainder is
 * extrapolated from its own progress when it reported some.
 */
export function estimateEta(plan: EtaPlan, tasks: readonly EtaTask[], now: number, maxParallel: number): number | undefined {
  const observed = new Map<string, { sum: number; n: number }>()
  let allSum = 0
  let allN = 0
  tasks.forEach((t, i) => {
    if (t.state !== 'COMPLETED' || t.reused || t.cached) return
    const o = observed.get(plan.tasks[i]!.agent) ?? { sum: 0, n: 0 }
    o.sum += t.busyMs
    o.n++
    observed.set(plan.tasks[i]!.agent, o)
    allSum += t.busyMs
    allN++
  })
  // Nothing finished yet: running tasks' progress says what a whole task takes.
  if (allN === 0) {
    tasks.forEach((t) => {
      const open = t.state === 'RUNNING' ? t.intervals.at(-1) : undefined
      if (open === undefined || t.fraction === undefined || t.fraction <= 0) return
      allSum += (now - open.start) / t.fraction
      allN++
    })
  }
  const remaining = new Float64Array(tasks.length)
  let work = 0
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!
    if (TERMINAL_STATES.has(t.state)) continue
    const o = observed.get(plan.tasks[i]!.agent)
    const expected = o ? o.sum / o.n : (plan.tasks[i]!.estimateMs ?? (allN > 0 ? allSum / allN : undefined))
    const open = t.state === 'RUNNING' ? t.intervals.at(-1) : undefined
    let left: number | undefined
    if (open && t.fraction !== undefined && t.fraction > 0) {
      const ran = now - open.start
      left = (ran * (1 - t.fraction)) / t.fraction
    } else if (expected !== undefined) {
      left = open ? Math.max(0, expected - (now - open.start)) : expected
    }
    if (left === undefined) return undefined
    remaining[i] = left
    work += left
  }
  const chain = bottomLevels(plan, plan.order, (i) => remaining[i]!)
  let longest = 0
  for (const b of chain) if (b > longest) longest = b
  return Math.round(Math.max(longest, work / maxParallel))
}
