import type { Strategy } from '../plan/plan.ts'
import { ReadyQueue } from './ready-queue.ts'
import { DagScheduler, estimatedDurations, type SchedulablePlan } from './scheduler.ts'

export interface SimulateOptions {
  /** Identical workers (slots) available. `sequential` always uses one. */
  readonly workers: number
  /** @default 'concurrent' */
  readonly strategy?: Strategy
  /**
   * Duration of each task by index, used both as the virtual run time and for the
   * scheduler's b-levels (a simulation with perfect estimates).
   * @default estimatedDurations(plan): `estimateMs`, else the plan's median estimate, else 1
   */
  readonly durations?: Float64Array
}

export interface Simulation {
  /** Last finish time (the schedule starts at 0). */
  readonly makespanMs: number
  /** Start time of each task by index. */
  readonly start: Float64Array
  /** Finish time of each task by index. */
  readonly finish: Float64Array
}

/**
 * Runs the real {@link DagScheduler} on a virtual clock: no threads, no timers, just an
 * event queue of finish times. Every task completes and takes exactly its duration, so the
 * result is the schedule troupe would produce with perfect estimates.
 *
 * Finishes that fall at the same instant are all recorded before any new task is started,
 * so a task released by the second of two simultaneous finishes competes for the freed
 * slots on equal terms with one released by the first.
 *
 * @example
 * const { makespanMs } = simulate(plan, { workers: 4 })
 */
export function simulate(plan: SchedulablePlan, options: SimulateOptions): Simulation {
  const workers = options.strategy === 'sequential' ? 1 : options.workers
  if (!Number.isSafeInteger(workers) || workers < 1) {
    throw new RangeError(`Expected \`workers\` to be an integer >= 1, got \`${String(options.workers)}\` (${typeof options.workers})`)
  }
  const n = plan.tasks.length
  const durations = options.durations ?? estimatedDurations(plan)
  if (durations.length !== n) {
    throw new RangeError(`Expected \`durations\` to have one entry per task (${n}), got ${durations.length}`)
  }
  const scheduler = new DagScheduler(plan, options.strategy ?? 'concurrent', durations)
  const start = new Float64Array(n)
  const finish = new Float64Array(n)
  const running = new ReadyQueue((a, b) => (finish[a] !== finish[b] ? finish[a]! < finish[b]! : a < b))
  let now = 0
  let makespan = 0
  scheduler.start()
  while (!scheduler.done) {
    while (running.size < Math.min(workers, scheduler.slotLimit)) {
      const task = scheduler.next()
      if (task === undefined) break
      start[task] = now
      finish[task] = now + durations[task]!
      running.push(task)
    }
    const first = running.pop()
    // Unreachable for a DAG whose tasks all complete; guards against a scheduler bug looping forever.
    if (first === undefined) throw new Error(`simulate: no task ready or running with ${scheduler.readyCount} ready and the plan not done`)
    now = finish[first]!
    if (now > makespan) makespan = now
    scheduler.end(first, 'completed')
    while (running.size > 0 && finish[running.peek()!] === now) scheduler.end(running.pop()!, 'completed')
  }
  return { makespanMs: makespan, start, finish }
}

export type ScheduleViolation =
  | { readonly kind: 'duration'; readonly task: number; readonly message: string }
  | { readonly kind: 'precedence'; readonly task: number; readonly dependency: number; readonly message: string }
  | { readonly kind: 'capacity'; readonly at: number; readonly running: number; readonly message: string }

/**
 * Checks a schedule against its plan: each task runs for its duration, starts no earlier
 * than every dependency finishes, and never more than `workers` tasks run at once (a task
 * finishing at t frees its slot for one starting at t). Returns every violation found;
 * an empty array means the schedule is valid.
 */
export function validateSchedule(
  plan: SchedulablePlan,
  durations: Float64Array,
  start: Float64Array,
  finish: Float64Array,
  workers: number,
): ScheduleViolation[] {
  const n = plan.tasks.length
  const violations: ScheduleViolation[] = []
  // Float sums of durations drift by ulps; allow that much.
  const eps = (t: number) => 1e-9 * Math.max(1, Math.abs(t))
  for (let i = 0; i < n; i++) {
    if (Math.abs(finish[i]! - start[i]! - durations[i]!) > eps(finish[i]!)) {
      violations.push({ kind: 'duration', task: i, message: `task ${i} ran ${finish[i]! - start[i]!} instead of ${durations[i]}` })
    }
    for (const dep of plan.deps[i]!) {
      if (start[i]! < finish[dep]! - eps(finish[dep]!)) {
        violations.push({
          kind: 'precedence',
          task: i,
          dependency: dep,
          message: `task ${i} started at ${start[i]} before its dependency ${dep} finished at ${finish[dep]}`,
        })
      }
    }
  }
  // Sweep: +1 at each start, -1 at each finish; at equal times finishes come first.
  // Zero-length tasks hold no slot over any interval, so they are left out.
  const events: number[] = []
  for (let i = 0; i < n; i++) if (finish[i]! > start[i]!) events.push(i, ~i)
  const timeOf = (e: number) => (e >= 0 ? start[e]! : finish[~e]!)
  events.sort((a, b) => timeOf(a) - timeOf(b) || (a < 0 ? -1 : 0) - (b < 0 ? -1 : 0))
  let running = 0
  for (const e of events) {
    running += e >= 0 ? 1 : -1
    if (running > workers) {
      violations.push({ kind: 'capacity', at: timeOf(e), running, message: `${running} tasks run at once at ${timeOf(e)} on ${workers} workers` })
    }
  }
  return violations
}
