import { TASK_STATES, type TaskState } from '../runtime/core/task-state.ts'
import type { SerializedError } from '../runtime/core/errors.ts'
import type {
  ApprovalEvent,
  LimitPausedEvent,
  RunEndEvent,
  ScratchpadNoteEvent,
  TaskLogEvent,
  TaskProgressEvent,
  TaskStateEvent,
} from '../runtime/report/events.ts'
import { dependencyLevels, type Graph } from '../runtime/plan/graph.ts'
import { estimateEta } from './eta.ts'
import { type ApprovalView, approvalView, type MessagesView, type RepairView, repairViews } from './run-facts.ts'
import type { PlanStrategy } from '../runtime/plan/plan.ts'
import type { RunResult, RunStatus, TaskWorkspaceResult } from '../runtime/report/result.ts'

/** Log lines kept per task for live views; older ones are dropped. */
const RECENT_LOGS = 5
/** Scratchpad notes kept for live views (the latest; `troupe logs --scratchpad` has them all). */
const RECENT_NOTES = 20

/** One attempt's stay in RUNNING, on the worker slot it was drawn on. */
export interface AttemptInterval {
  readonly attempt: number
  readonly slot: number
  readonly start: number
  /** Absent while the attempt runs. */
  readonly end?: number
  /** The attempt failed (whether or not the task was retried). */
  readonly failed?: boolean
}

/** Named limits paused by a provider's rate limit, and when they admit again. */
export interface LimitPause {
  readonly limits: readonly string[]
  readonly taskId: string
  /** Epoch ms when they admit again. */
  readonly until: number
  readonly at: number
}

/** What a live view shows of one task. JSON-serialisable. */
export interface TaskView {
  readonly id: string
  readonly agent: string
  /** Ids of the tasks it depends on. */
  readonly deps: readonly string[]
  /** Dependency level: 0 for roots. */
  readonly level: number
  readonly state: TaskState
  /** States entered, in order, starting with PENDING. */
  readonly history: readonly TaskState[]
  readonly attempt: number
  /** Last reported progress, 0..1, of the current attempt. */
  readonly fraction?: number
  /** Last progress message of the current attempt. */
  readonly message?: string
  readonly logs: readonly string[]
  /** The task's output: in reports of finished runs only. */
  readonly output?: unknown
  readonly intervals: readonly AttemptInterval[]
  /** When the running attempt started. */
  readonly runningSince?: number
  readonly busyMs: number
  readonly reused: boolean
  /** The output came from the task cache (the agent did not run). */
  readonly cached?: true
  readonly error?: SerializedError
  /** Worktree tasks, once the run has ended: branch, diff size and merge result. */
  readonly workspace?: TaskWorkspaceResult
  /** Where the final attempt ran, when not this process (a `troupe worker`'s name). */
  readonly worker?: string
  /** The plan's `description` and `tags` (shown, never interpreted). */
  readonly description?: string
  readonly tags?: readonly string[]
  /** Added at run time (`ctx.spawn`, `add_tasks`, `Run.addTasks`), by `parent` when a task added it. */
  readonly added?: true
  readonly parent?: string
  /** Each repair the task needed (worktree tasks with `repair`), the detail's tail sanitised; known once the task ended. */
  readonly repairs?: readonly RepairView[]
  /** Its approval gate's latest state: awaiting, or approved / rejected, by whom and why. */
  readonly approval?: ApprovalView
}

function pendingTask(): MutableTask {
  return {
    state: 'PENDING',
    history: ['PENDING'],
    attempt: 0,
    fraction: undefined,
    message: undefined,
    logs: [],
    intervals: [],
    busyMs: 0,
    reused: false,
    error: undefined,
  }
}

/** Time an agent kind spent in workers, and its share of the run's slot capacity. */
export interface AgentUtilisation {
  readonly agent: string
  readonly tasks: number
  readonly busyMs: number
  /** busyMs / (elapsedMs × maxParallel), 0..1. */
  readonly utilisation: number
}

/** The figures of a finished run, copied from its RunResult. */
export type FinalFigures = Pick<
  RunResult,
  'makespanMs' | 'sequentialMs' | 'criticalPathMs' | 'lowerBoundMs' | 'speedup' | 'efficiency' | 'parallelization' | 'totals'
>

/** A run as a live view shows it, at one instant. JSON-serialisable. */
export interface RunSnapshot {
  readonly runId: string
  readonly name: string
  readonly strategy: PlanStrategy
  readonly status: 'running' | RunStatus
  readonly maxParallel: number
  readonly startedAt: number
  /** The instant the snapshot describes. */
  readonly at: number
  readonly counts: Readonly<Record<TaskState, number>>
  /** Time from the first start until now (or until the last finish, once ended). */
  readonly elapsedMs: number
  /** Worker time spent so far, ended and running attempts together. */
  readonly busyMs: number
  /** busyMs / elapsedMs: the parallelism achieved so far. */
  readonly speedup: number
  /** Estimated time to the end; undefined when nothing is known of some remaining task's duration. */
  readonly etaMs: number | undefined
  /** Worker slots drawn on so far (the timeline's rows). */
  readonly slots: number
  readonly agents: readonly AgentUtilisation[]
  readonly tasks: readonly TaskView[]
  /** Rate-limit pauses not yet over at `at`, latest per limit. */
  readonly pauses: readonly LimitPause[]
  /** The latest notes of the run's scratchpad, oldest first (absent when there are none). */
  readonly notes?: readonly ScratchpadNoteEvent[]
  /**
   * The run's newest messages between tasks, read from its directory (a report has them; the live page asks
   * `/api/messages`). Absent when there are none.
   */
  readonly messages?: MessagesView
  /** Present once the run has ended. */
  readonly final?: FinalFigures
}

/** What a monitor needs to know of a plan. A CompiledPlan fits. */
export interface MonitoredPlan extends Graph {
  readonly name: string
  readonly order: readonly number[]
  readonly tasks: readonly {
    readonly id: string
    readonly agent: string
    readonly estimateMs: number | undefined
    readonly description?: string | undefined
    readonly tags?: readonly string[]
    readonly added?: true
    readonly parent?: string
  }[]
  readonly byId: ReadonlyMap<string, number>
}

export interface RunMonitorInit {
  readonly runId: string
  readonly plan: MonitoredPlan
  readonly strategy: PlanStrategy
  /** Read at each snapshot: the run's maxParallel may change while it runs. */
  readonly maxParallel: () => number
  readonly startedAt: number
  readonly now: () => number
}

interface MutableTask {
  state: TaskState
  history: TaskState[]
  attempt: number
  fraction: number | undefined
  message: string | undefined
  logs: string[]
  intervals: { attempt: number; slot: number; start: number; end?: number; failed?: boolean }[]
  busyMs: number
  reused: boolean
  cached?: true
  error: SerializedError | undefined
  workspace?: TaskWorkspaceResult
  worker?: string
  repairs?: readonly RepairView[]
  approval?: ApprovalView
}

/**
 * Folds a run's events into what live views show: states, progress, recent logs, attempt
 * intervals on worker slots, ETA and speedup so far. Pure: no I/O, time comes from the
 * events and the injected `now`. The terminal view and the dashboard both render its
 * {@link RunMonitor.snapshot}.
 */
export class RunMonitor {
  readonly runId: string
  readonly #init: RunMonitorInit
  readonly #tasks: MutableTask[]
  readonly #levels: number[]
  readonly #slotBusy: boolean[] = []
  #status: RunSnapshot['status'] = 'running'
  #final: FinalFigures | undefined
  #endedAt: number | undefined
  #firstStart: number | undefined
  readonly #pauses = new Map<string, LimitPause>()
  readonly #notes: ScratchpadNoteEvent[] = []
  /** The last raw ETA and when it was computed: between changes, the ETA counts down. */
  #etaAnchor: { raw: number; at: number } | undefined

  constructor(init: RunMonitorInit) {
    this.runId = init.runId
    this.#init = init
    this.#levels = Array.from(dependencyLevels(init.plan, init.plan.order))
    this.#tasks = init.plan.tasks.map(pendingTask)
  }

  /** Rows for tasks added to the run since the last look (a run's plan grows). */
  #grow(): void {
    const plan = this.#init.plan
    while (this.#tasks.length < plan.tasks.length) {
      const i = this.#tasks.length
      this.#tasks.push(pendingTask())
      let level = 0
      for (const dep of plan.deps[i]!) level = Math.max(level, (this.#levels[dep] ?? 0) + 1)
      this.#levels.push(level)
    }
  }

  get status(): RunSnapshot['status'] {
    return this.#status
  }

  taskState(e: TaskStateEvent): void {
    const task = this.#task(e.taskId)
    if (task === undefined) return
    if (task.state === 'RUNNING') this.#closeInterval(task, e.at, e.state === 'FAILED' || (e.state === 'QUEUED' && e.error !== undefined))
    task.state = e.state
    task.history.push(e.state)
    task.attempt = e.attempt
    task.error = e.error
    if (e.state === 'COMPLETED' && e.previous === 'PENDING') task.reused = true
    if (e.state === 'COMPLETED' && e.cached) task.cached = true
    // Live, not only at the run's end: the task's repairs come with its final state.
    if (e.repairs !== undefined) {
      const repairs = repairViews(e.repairs)
      if (repairs !== undefined) task.repairs = repairs
    }
    if (e.state === 'RUNNING') {
      let slot = this.#slotBusy.indexOf(false)
      if (slot === -1) slot = this.#slotBusy.length
      this.#slotBusy[slot] = true
      task.intervals.push({ attempt: e.attempt, slot, start: e.at })
      task.fraction = undefined
      task.message = undefined
      this.#firstStart ??= e.at
    }
  }

  taskProgress(e: TaskProgressEvent): void {
    const task = this.#task(e.taskId)
    if (task === undefined || e.attempt !== task.attempt) return
    task.fraction = e.fraction
    if (e.message !== undefined) task.message = e.message
  }

  taskLog(e: TaskLogEvent): void {
    const task = this.#task(e.taskId)
    if (task === undefined) return
    task.logs.push(e.message)
    if (task.logs.length > RECENT_LOGS) task.logs.shift()
  }

  limitPaused(e: LimitPausedEvent): void {
    for (const limit of e.limits) {
      const before = this.#pauses.get(limit)
      if (before === undefined || before.until <= e.until) {
        this.#pauses.set(limit, { limits: [limit], taskId: e.taskId, until: e.until, at: e.at })
      }
    }
  }

  taskApproval(e: ApprovalEvent): void {
    const task = this.#task(e.taskId)
    if (task !== undefined) task.approval = approvalView(e)
  }

  scratchpadNote(e: ScratchpadNoteEvent): void {
    this.#notes.push(e)
    if (this.#notes.length > RECENT_NOTES) this.#notes.shift()
  }

  runEnd(e: RunEndEvent): void {
    const r = e.result
    this.#init.plan.tasks.forEach((spec, i) => {
      const ended = Object.hasOwn(r.tasks, spec.id) ? r.tasks[spec.id] : undefined
      if (ended?.workspace) this.#tasks[i]!.workspace = ended.workspace
      if (ended?.worker !== undefined) this.#tasks[i]!.worker = ended.worker
      const repairs = repairViews(ended?.repairs)
      if (repairs !== undefined) this.#tasks[i]!.repairs = repairs
    })
    this.#status = r.status
    this.#endedAt = r.finishedAt
    this.#final = {
      makespanMs: r.makespanMs,
      sequentialMs: r.sequentialMs,
      criticalPathMs: r.criticalPathMs,
      lowerBoundMs: r.lowerBoundMs,
      speedup: r.speedup,
      efficiency: r.efficiency,
      parallelization: r.parallelization,
      totals: r.totals,
    }
  }

  snapshot(): RunSnapshot {
    const now = this.#endedAt ?? this.#init.now()
    const plan = this.#init.plan
    this.#grow()
    const maxParallel = this.#init.maxParallel()
    const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>
    const byAgent = new Map<string, { tasks: number; busyMs: number }>()
    let busyMs = 0
    let lastEnd = -Infinity
    const tasks = this.#tasks.map((t, i): TaskView => {
      counts[t.state]++
      const open = t.intervals.at(-1)?.end === undefined ? t.intervals.at(-1) : undefined
      const taskBusy = t.busyMs + (open ? Math.max(0, now - open.start) : 0)
      for (const interval of t.intervals) if (interval.end !== undefined && interval.end > lastEnd) lastEnd = interval.end
      busyMs += taskBusy
      const spec = plan.tasks[i]!
      const agent = byAgent.get(spec.agent) ?? { tasks: 0, busyMs: 0 }
      agent.tasks++
      agent.busyMs += taskBusy
      byAgent.set(spec.agent, agent)
      return {
        id: spec.id,
        agent: spec.agent,
        deps: plan.deps[i]!.map((d) => plan.tasks[d]!.id),
        level: this.#levels[i]!,
        ...(spec.description === undefined ? {} : { description: spec.description }),
        ...(spec.tags === undefined || spec.tags.length === 0 ? {} : { tags: spec.tags }),
        ...(spec.added ? { added: true as const, ...(spec.parent === undefined ? {} : { parent: spec.parent }) } : {}),
        state: t.state,
        history: [...t.history],
        attempt: t.attempt,
        ...(t.fraction === undefined ? {} : { fraction: t.fraction }),
        ...(t.message === undefined ? {} : { message: t.message }),
        logs: [...t.logs],
        intervals: t.intervals.map((x) => ({ ...x })),
        ...(open ? { runningSince: open.start } : {}),
        busyMs: taskBusy,
        reused: t.reused,
        ...(t.cached ? { cached: true as const } : {}),
        ...(t.error ? { error: t.error } : {}),
        ...(t.workspace ? { workspace: t.workspace } : {}),
        ...(t.worker !== undefined && t.worker !== 'local' ? { worker: t.worker } : {}),
        ...(t.repairs === undefined ? {} : { repairs: t.repairs }),
        ...(t.approval === undefined ? {} : { approval: t.approval }),
      }
    })
    const until = this.#endedAt !== undefined && lastEnd > -Infinity ? lastEnd : now
    const elapsedMs = this.#firstStart === undefined ? 0 : Math.max(0, until - this.#firstStart)
    const capacity = elapsedMs * maxParallel
    return {
      runId: this.runId,
      name: plan.name,
      strategy: this.#init.strategy,
      status: this.#status,
      maxParallel,
      startedAt: this.#init.startedAt,
      at: now,
      counts,
      elapsedMs,
      busyMs,
      speedup: elapsedMs > 0 ? busyMs / elapsedMs : 0,
      etaMs: this.#status === 'running' ? this.#tickingEta(now, maxParallel) : 0,
      slots: this.#slotBusy.length,
      agents: [...byAgent].map(([agent, a]) => ({
        agent,
        tasks: a.tasks,
        busyMs: a.busyMs,
        utilisation: capacity > 0 ? Math.min(1, a.busyMs / capacity) : 0,
      })),
      tasks,
      ...(this.#notes.length > 0 ? { notes: [...this.#notes] } : {}),
      pauses: this.#status === 'running' ? [...this.#pauses.values()].filter((p) => p.until > now) : [],
      ...(this.#final ? { final: this.#final } : {}),
    }
  }

  #task(id: string): MutableTask | undefined {
    const index = this.#init.plan.byId.get(id)
    if (index === undefined) return undefined
    if (index >= this.#tasks.length) this.#grow()
    return this.#tasks[index]
  }

  #closeInterval(task: MutableTask, at: number, failed: boolean): void {
    const open = task.intervals.at(-1)
    if (open === undefined || open.end !== undefined) return
    open.end = at
    if (failed) open.failed = true
    task.busyMs += Math.max(0, at - open.start)
    this.#slotBusy[open.slot] = false
  }

  /**
   * The estimate counts down while nothing new is known: an unchanged raw estimate (tasks
   * running past their expected duration are clamped to zero left) would otherwise freeze
   * between completions. It never goes below what the raw estimate says is left.
   */
  #tickingEta(now: number, maxParallel: number): number | undefined {
    const raw = estimateEta(this.#init.plan, this.#tasks, now, maxParallel)
    if (raw === undefined) {
      this.#etaAnchor = undefined
      return undefined
    }
    if (this.#etaAnchor === undefined || this.#etaAnchor.raw !== raw) {
      this.#etaAnchor = { raw, at: now }
      return raw
    }
    return Math.max(0, raw - (now - this.#etaAnchor.at))
  }
}
