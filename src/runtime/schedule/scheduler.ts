import type { Graph } from '../plan/graph.ts'
import { PRIORITIES, type Priority, type Strategy } from '../plan/plan.ts'
import { ReadyQueue } from './ready-queue.ts'
import { estimatedDurations, fallbackEstimate, fillOrderingKeys, groupsFor, grown, orderingKeys } from './schedule-keys.ts'

export { estimatedDurations } from './schedule-keys.ts'

/**
 * What an admission check passed to {@link DagScheduler.next} may answer besides true and
 * false: not this task, nor any other ready task of its agent in this pass (the refusal was
 * about the agent, e.g. no thread slot for a module agent, or its CPU does not fit). The pass
 * skips them without asking, and ends once only such tasks are left, so that a pass costs what
 * the agents refused, not every ready task (regression: with thousands ready, every event
 * walked them all and a 30,000-task run on a busy machine took 110 s).
 */
export const REFUSE_AGENT = 'agent'
export type Admission = boolean | typeof REFUSE_AGENT

/** What the scheduler needs to know about a plan. Both compiled plans and bare graphs fit. */
export interface SchedulablePlan extends Graph {
  readonly tasks: readonly {
    readonly priority?: Priority
    readonly estimateMs?: number | undefined
    readonly stage?: string | undefined
    /** A run-time condition (the source of `when`); see {@link ConditionCheck}. */
    readonly when?: string | undefined
    /** The task's agent: an admission may refuse all of an agent's ready tasks at once (see {@link REFUSE_AGENT}). */
    readonly agent?: string
  }[]
  readonly order: readonly number[]
  /**
   * `strategy: hybrid`: stage name → its rule, keys in the order the
   * stages run. Each stage is a barrier group in that order, with its own slot limit
   * ({@link DagScheduler.slotLimit}) and fail-fast rule.
   */
  readonly stages?: Readonly<Record<string, HybridStage>> | undefined
}

/** The rule of one stage of a hybrid plan, as the scheduler reads it. */
export interface HybridStage {
  readonly parallel: boolean
  readonly maxParallel?: number | undefined
  readonly failFast?: boolean | undefined
}

export type Outcome = 'completed' | 'failed' | 'cancelled'

/**
 * Decides a task with a `when` condition once its dependencies are done (and its barrier
 * group is open): `run` queues it, `skip` ends it as skipped by its condition, `fail` ends
 * it as failed (the expression threw). Absent (simulation), conditional tasks just run.
 */
export type ConditionCheck = (task: number) => 'run' | 'skip' | 'fail'

/**
 * A gate between "dependencies done" and the ready set: false holds the task out of it (in
 * {@link Transition.held}) until the caller puts it back with {@link DagScheduler.requeue}.
 * The run's approve-before-start gate.
 */
export type ReadyGate = (task: number) => boolean

export interface Transition {
  /** Tasks whose dependencies (and strategy barrier) are now satisfied: PENDING → QUEUED. */
  readonly ready: readonly number[]
  /** Tasks that can no longer run because a dependency did not complete: → SKIPPED. */
  readonly skipped: readonly number[]
  /**
   * Tasks skipped because their condition was false, or because they have no condition and
   * a dependency was skipped that way (→ SKIPPED, ERR_CONDITION_FALSE). A condition-skipped
   * dependency counts as satisfied for a dependent that has its own `when`.
   */
  readonly conditionSkipped: readonly number[]
  /** Tasks whose condition threw (→ FAILED); their dependents are in `skipped`. */
  readonly conditionFailed: readonly number[]
  /** Tasks whose dependencies are done that the {@link ReadyGate} holds out of the ready set. */
  readonly held: readonly number[]
}

interface Acc {
  ready: number[]
  skipped: number[]
  conditionSkipped: number[]
  conditionFailed: number[]
  held: number[]
}

const acc = (): Acc => ({ ready: [], skipped: [], conditionSkipped: [], conditionFailed: [], held: [] })

/** How a task ended, in {@link DagScheduler}'s table (0: not ended). */
const COMPLETED = 1
/** Failed, skipped by a failure, or cancelled: its dependents cannot run. */
const NOT_COMPLETED = 2
/** Skipped by a condition: a dependent with its own `when` counts it as satisfied. */
const CONDITION_SKIPPED = 3

const RANK: Readonly<Record<Priority, number>> = Object.fromEntries(PRIORITIES.map((p, i) => [p, i])) as Record<Priority, number>


/**
 * The pure scheduling core, shared by real runs and the virtual-clock simulation. It owns
 * no clock, no threads and no task state: callers tell it how tasks ended and ask it which
 * ready task goes next.
 *
 * Ready order: priority class (critical > high > medium > low), then the longest remaining
 * path to the end of the graph (b-level), then plan order. Among tasks of equal b-level
 * (frequent with integer or missing estimates) the one that unlocks more downstream work
 * goes first: the sum, over every dependency path leaving the task, of the work on it.
 * Paths, not distinct descendants, because that is one O(n + e) pass; on the 1440 STG
 * schedules it lowers the mean gap to the published best from 0.33 % to 0.31 % (hard
 * subset 0.83 % to 0.79 %). On huge graphs the sum can overflow to Infinity, which only
 * hands those ties back to plan order.
 *
 * Strategies map to barrier groups: `waves` puts each dependency level in its own group,
 * `pipeline` each stage (in order of first appearance); a group opens only when every task
 * of the previous groups has ended. `concurrent` and `sequential` use one group (sequential
 * differs only in running one task at a time, which is the caller's slot count).
 */
export class DagScheduler {
  /** Read through on every use: a run's plan grows (tasks added at run time, see {@link add}). */
  readonly #plan: SchedulablePlan
  #remainingDeps: Int32Array
  /** Per task: 0 not ended, else how it ended ({@link COMPLETED}, {@link NOT_COMPLETED}, {@link CONDITION_SKIPPED}). */
  #ended: Uint8Array
  #group: Int32Array
  #size: number
  readonly #groupRemaining: Int32Array
  readonly #groupFailed: Uint8Array
  readonly #deferred: number[][]
  /** Per group: a failure in it skips every later group. */
  readonly #failFast: Uint8Array
  /** Per group: most tasks of it running at once (Infinity: the caller's limit only). */
  readonly #limit: Float64Array
  readonly #queue: ReadyQueue
  readonly #condition: ConditionCheck | undefined
  readonly #gate: ReadyGate | undefined
  #openGroup = 0
  #endedCount = 0
  #started = false
  /** Priority class of each task, the first ready-order key. */
  #rank: Uint8Array
  /** Work on every dependency path leaving each task, the tie-break after b-level. */
  #downstream: Float64Array
  /** Estimate of a task without `estimateMs` (the plan's median estimate), for tasks added later. */
  readonly #fallbackMs: number
  /** Each task's estimated duration, the ordering keys' input. */
  #durations: Float64Array
  /** Agent name → class (see {@link REFUSE_AGENT}), and each task's class. */
  readonly #agentClasses = new Map<string, number>()
  #classOf: Int32Array
  /** b-level of each task (longest estimated path to the end), the critical-path key. */
  blevel: Float64Array

  constructor(
    plan: SchedulablePlan,
    strategy: Strategy = 'concurrent',
    durations: Float64Array = estimatedDurations(plan),
    condition?: ConditionCheck,
    gate?: ReadyGate,
  ) {
    const n = plan.tasks.length
    this.#plan = plan
    this.#size = n
    this.#condition = condition
    this.#gate = gate
    this.#fallbackMs = fallbackEstimate(plan)
    this.#durations = durations
    const { blevel, downstream } = orderingKeys(plan, plan.order, durations)
    this.blevel = blevel
    this.#downstream = downstream
    this.#rank = Uint8Array.from(plan.tasks, (t) => RANK[t.priority ?? 'medium'])
    this.#queue = new ReadyQueue((a, b) => {
      const rank = this.#rank
      const level = this.blevel
      const down = this.#downstream
      return rank[a] !== rank[b]
        ? rank[a]! < rank[b]!
        : level[a] !== level[b]
          ? level[a]! > level[b]!
          : down[a] !== down[b]
            ? down[a]! > down[b]!
            : a < b
    }, (task) => this.#classOf[task]!)
    this.#classOf = new Int32Array(n)
    for (let i = 0; i < n; i++) this.#classOf[i] = this.#agentClass(i)
    this.#remainingDeps = Int32Array.from(plan.deps, (d) => d.length)
    this.#ended = new Uint8Array(n)
    this.#group = groupsFor(plan, strategy)
    let groups = 0
    for (const g of this.#group) if (g + 1 > groups) groups = g + 1
    this.#groupRemaining = new Int32Array(groups)
    for (let i = 0; i < n; i++) this.#groupRemaining[this.#group[i]!]!++
    this.#groupFailed = new Uint8Array(groups)
    this.#deferred = Array.from({ length: groups }, () => [])
    this.#failFast = new Uint8Array(groups)
    this.#limit = new Float64Array(groups).fill(Infinity)
    // Pipeline: every stage is fail-fast. Hybrid: each declared stage has its own rule.
    if (strategy === 'pipeline') this.#failFast.fill(1)
    else if (strategy === 'hybrid') {
      Object.values(plan.stages ?? {}).forEach((stage, k) => {
        if (k >= groups) return
        this.#failFast[k] = stage.failFast === true ? 1 : 0
        this.#limit[k] = stage.parallel ? (stage.maxParallel ?? Infinity) : 1
      })
    }
  }

  get size(): number {
    return this.#size
  }

  /**
   * Most tasks that may run at once now: the open stage's limit of a hybrid plan (one stage
   * is open at a time), else Infinity. Callers take the smaller of this and their slots.
   */
  /** The barrier group open now (0 for strategies without barriers). */
  get openGroup(): number {
    return this.#openGroup
  }

  get slotLimit(): number {
    return this.#limit[this.#openGroup] ?? Infinity
  }

  /** Number of tasks ready to start. */
  get readyCount(): number {
    return this.#queue.size
  }

  /** True once every task has ended. */
  get done(): boolean {
    return this.#endedCount === this.#size
  }

  isEnded(task: number): boolean {
    return this.#ended[task] !== 0
  }

  /**
   * Starts the schedule. `alreadyCompleted` tasks (reused from a journal) count as completed
   * without running. Returns the first transitions.
   */
  start(alreadyCompleted: Iterable<number> = []): Transition {
    const t = acc()
    this.#started = true
    // All reused tasks are marked ended before any is released: ending them one by one
    // would release a reused task when its reused dependency ends, and release others twice.
    const completed = [...alreadyCompleted].filter((task) => this.#ended[task] === 0)
    for (const task of completed) this.#markEnded(task, COMPLETED)
    for (const task of completed) for (const next of this.#plan.dependents[task]!) this.#remainingDeps[next]!--
    for (let i = 0; i < this.#size; i++) {
      if (this.#ended[i] === 0 && this.#remainingDeps[i] === 0) this.#release(i, t)
    }
    this.#advanceGroups(t)
    return t
  }

  /**
   * Pops the best ready task for which `admit` returns true (default: any). Tasks that are
   * not admitted stay ready, in their place.
   */
  next(admit?: (task: number) => Admission): number | undefined {
    const queue = this.#queue
    if (admit === undefined) return queue.pop()
    let blocked: number[] | undefined
    let found: number | undefined
    // Agents refused as a whole in this pass, and how many of their tasks are still queued.
    let refused: Set<number> | undefined
    let refusedLeft = 0
    while (queue.size > refusedLeft) {
      const task = queue.pop()!
      const agent = this.#classOf[task]!
      if (refused?.has(agent)) {
        refusedLeft--
        ;(blocked ??= []).push(task)
        continue
      }
      const answer = admit(task)
      if (answer === true) {
        found = task
        break
      }
      ;(blocked ??= []).push(task)
      if (answer === REFUSE_AGENT) {
        ;(refused ??= new Set()).add(agent)
        refusedLeft += queue.countOf(agent)
      }
    }
    if (blocked) for (const task of blocked) queue.push(task)
    return found
  }

  /** A small integer per agent name (tasks without one share one class). */
  #agentClass(task: number): number {
    const agent = this.#plan.tasks[task]!.agent ?? ''
    let c = this.#agentClasses.get(agent)
    if (c === undefined) {
      c = this.#agentClasses.size
      this.#agentClasses.set(agent, c)
    }
    return c
  }


  /** A task popped by {@link next} goes back to ready (it will retry, or was not started). */
  requeue(task: number): void {
    this.#queue.push(task)
  }

  /** Records how a started task ended. */
  end(task: number, outcome: Outcome): Transition {
    const t = acc()
    this.#end(task, outcome, t)
    this.#advanceGroups(t)
    return t
  }

  /** Ends every task that has not ended (run cancelled or budget exhausted). Returns them. */
  endAll(): number[] {
    this.#queue.drain()
    const ended: number[] = []
    for (let i = 0; i < this.#size; i++) {
      if (this.#ended[i] === 0) {
        this.#ended[i] = NOT_COMPLETED
        ended.push(i)
      }
    }
    this.#endedCount = this.#size
    return ended
  }

  /**
   * Adds tasks the plan has grown by (run indices from {@link size} on, dependencies first;
   * their dependencies are tasks already known or earlier ones of `tasks`). They join the
   * barrier group open now. A task whose dependency already failed is skipped at once, one
   * whose dependencies all completed is ready at once. Returns the transitions.
   */
  add(tasks: readonly number[]): Transition {
    const t = acc()
    if (tasks.length === 0) return t
    const first = this.#size
    const size = first + tasks.length
    const plan = this.#plan
    this.#remainingDeps = grown(this.#remainingDeps, size)
    this.#ended = grown(this.#ended, size)
    this.#group = grown(this.#group, size)
    this.#rank = grown(this.#rank, size)
    this.blevel = grown(this.blevel, size)
    this.#downstream = grown(this.#downstream, size)
    this.#durations = grown(this.#durations, size)
    this.#classOf = grown(this.#classOf, size)
    this.#size = size
    for (const task of tasks) {
      this.#classOf[task] = this.#agentClass(task)
      this.#durations[task] = plan.tasks[task]!.estimateMs ?? this.#fallbackMs
      this.#rank[task] = RANK[plan.tasks[task]!.priority ?? 'medium']
      this.#group[task] = this.#openGroup
    }
    // An added task's dependents are added tasks: the keys of the new ones are all it takes.
    fillOrderingKeys(plan, tasks, this.#durations, { blevel: this.blevel, downstream: this.#downstream })
    this.#groupRemaining[this.#openGroup]! += tasks.length
    if (!this.#started) {
      // Added before the start: {@link start} releases them with the plan's own.
      for (const task of tasks) this.#remainingDeps[task] = plan.deps[task]!.length
      return t
    }
    for (const task of tasks) {
      if (this.#ended[task] !== 0) continue
      let waiting = 0
      let how = 0
      for (const dep of plan.deps[task]!) {
        const ended = this.#ended[dep]!
        if (ended === 0) waiting++
        else if (ended === NOT_COMPLETED) how = NOT_COMPLETED
        else if (ended === CONDITION_SKIPPED && how === 0 && plan.tasks[task]!.when === undefined) how = CONDITION_SKIPPED
      }
      this.#remainingDeps[task] = waiting
      if (how === NOT_COMPLETED) {
        this.#markEnded(task, NOT_COMPLETED)
        t.skipped.push(task)
        this.#failed(task, t.skipped)
      } else if (how === CONDITION_SKIPPED) {
        this.#markEnded(task, CONDITION_SKIPPED)
        t.conditionSkipped.push(task)
        this.#conditionSkipped(task, t)
      } else if (waiting === 0) this.#release(task, t)
    }
    this.#advanceGroups(t)
    return t
  }

  #end(task: number, outcome: Outcome, t: Acc): void {
    if (this.#ended[task] !== 0) return
    this.#markEnded(task, outcome === 'completed' ? COMPLETED : NOT_COMPLETED)
    if (outcome === 'completed') {
      for (const next of this.#plan.dependents[task]!) {
        if (--this.#remainingDeps[next]! === 0 && this.#ended[next] === 0) this.#release(next, t)
      }
      return
    }
    this.#failed(task, t.skipped)
  }

  /** `task` (already ended) did not complete: every transitive dependent can no longer run. */
  #failed(task: number, skipped: number[]): void {
    this.#groupFailed[this.#group[task]!] = 1
    // Every transitive dependent can no longer run.
    const stack = [task]
    while (stack.length > 0) {
      for (const next of this.#plan.dependents[stack.pop()!]!) {
        if (this.#ended[next] === 0) {
          this.#markEnded(next, NOT_COMPLETED)
          skipped.push(next)
          stack.push(next)
        }
      }
    }
  }

  #markEnded(task: number, how: number): void {
    this.#ended[task] = how
    this.#endedCount++
    this.#groupRemaining[this.#group[task]!]!--
  }

  #release(task: number, t: Acc): void {
    if (this.#group[task]! <= this.#openGroup) this.#enqueue(task, t)
    else this.#deferred[this.#group[task]!]!.push(task)
  }

  /** A task whose dependencies are done and whose group is open: its condition decides. */
  #enqueue(task: number, t: Acc): void {
    const verdict = this.#condition !== undefined && this.#plan.tasks[task]!.when !== undefined ? this.#condition(task) : 'run'
    if (verdict === 'run') {
      if (this.#gate !== undefined && !this.#gate(task)) {
        t.held.push(task)
        return
      }
      this.#queue.push(task)
      t.ready.push(task)
    } else if (verdict === 'fail') {
      this.#markEnded(task, NOT_COMPLETED)
      t.conditionFailed.push(task)
      this.#failed(task, t.skipped)
    } else {
      this.#markEnded(task, CONDITION_SKIPPED)
      t.conditionSkipped.push(task)
      this.#conditionSkipped(task, t)
    }
  }

  /**
   * `task` was skipped by a condition: a dependent with its own condition counts it as
   * satisfied; one without is skipped the same way, and so on down the graph.
   */
  #conditionSkipped(task: number, t: Acc): void {
    const stack = [task]
    while (stack.length > 0) {
      for (const next of this.#plan.dependents[stack.pop()!]!) {
        if (this.#ended[next] !== 0) continue
        if (this.#plan.tasks[next]!.when !== undefined) {
          if (--this.#remainingDeps[next]! === 0) this.#release(next, t)
        } else {
          this.#markEnded(next, CONDITION_SKIPPED)
          t.conditionSkipped.push(next)
          stack.push(next)
        }
      }
    }
  }

  #advanceGroups(t: Acc): void {
    const { skipped } = t
    const groups = this.#groupRemaining.length
    while (this.#openGroup < groups && this.#groupRemaining[this.#openGroup] === 0) {
      const failed = this.#groupFailed[this.#openGroup] === 1
      this.#openGroup++
      if (failed && this.#failFast[this.#openGroup - 1] === 1) {
        // Fail-fast (pipeline, or a hybrid stage with failFast): a failed stage skips every later stage.
        for (let i = 0; i < this.#size; i++) {
          if (this.#ended[i] === 0) {
            this.#markEnded(i, NOT_COMPLETED)
            skipped.push(i)
          }
        }
        this.#queue.drain()
        return
      }
      if (this.#openGroup < groups) {
        for (const task of this.#deferred[this.#openGroup]!.splice(0)) {
          if (this.#ended[task] === 0) this.#enqueue(task, t)
        }
      }
    }
  }
}
