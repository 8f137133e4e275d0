import type { UsageReport } from '../runtime/admission/usage.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import type { RunEvents } from '../runtime/report/events.ts'
import type { AttemptHandle, AttemptListener, AttemptResult, MergeReview, SpawnAnswer, WaitTasksAnswer, WaitTasksRequest } from '../runtime/execution/executor.ts'
import type { CompiledTask } from '../runtime/plan/plan.ts'
import type { RunInit } from './run-init.ts'

/** What an attempt needs from its run: where it runs, and where its callbacks go. */
export interface AttemptHost
  extends Pick<RunInit, 'id' | 'plan' | 'config' | 'executor' | 'runDir' | 'clock' | 'dispatcher' | 'claims' | 'limits'>,
    Pick<RunInit, 'scratchpad' | 'mailbox'> {
  readonly emit: <K extends keyof RunEvents>(name: K, ...args: RunEvents[K]) => void
  readonly onUsage: (task: CompiledTask, report: UsageReport) => void
  /** The output of an ended task, for its dependents' `ctx.dependencies`. */
  readonly outputOf: (task: number) => unknown
  /** The current attempt of a task ran out of time. */
  readonly onTimeout: (task: number) => void
  /** The executor answered the task's current attempt (a late answer from an earlier one is dropped). */
  readonly onAnswer: (task: CompiledTask, result: AttemptResult) => void
  /** An attempt's slot is free again (after its answer, late or not); `parked`: it had given its slot back already. */
  readonly onFreed: (task: CompiledTask, parked: boolean) => void
  /** `ctx.spawn` / `add_tasks` of attempt `attempt` of `task`. */
  readonly onSpawn: (task: CompiledTask, attempt: number, tasks: unknown, wait: boolean) => Promise<SpawnAnswer>
  /** `wait_tasks` / `add_tasks` with `wait` of attempt `attempt` of `task`. */
  readonly onWaitTasks: (task: CompiledTask, attempt: number, request: WaitTasksRequest) => Promise<WaitTasksAnswer>
  /** The attempt succeeded and waits for approval before its merge (`approve: { before: "merge" }`); it gave its slot back. */
  readonly onHeld: (task: CompiledTask, review: MergeReview) => void
  /** Whether a repair of `task`'s attempt may start now: undefined if so, else why not. */
  readonly mayRepair?: (task: CompiledTask) => string | undefined
}

/** An attempt in flight: it holds a slot until its executor settles. */
interface InFlight {
  readonly attempt: number
  readonly handle: AttemptHandle
  timer: unknown
  /** Time left of its timeout, and since when its timer runs: the timer stops while the attempt awaits approval. */
  leftMs: number
  armedAt: number
  /** While held for approval: answers the workspace (true: merge). */
  decide: ((approved: boolean) => void) | undefined
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({})

/**
 * The outputs of `task`'s dependencies by task id, in an object with no prototype (so a task
 * named `__proto__` is a key like any other). It is born in V8's dictionary mode: a plain
 * `{}` given each task's own ids made a hidden class per task (100,000 of them, never shared,
 * on a large plan), and cloning it to the worker is no slower. A clone arrives as a plain object.
 */
function dependencyOutputs(host: AttemptHost, task: CompiledTask): Readonly<Record<string, unknown>> {
  if (task.deps.length === 0) return EMPTY
  const byId = Object.create(null) as Record<string, unknown>
  for (const dep of task.deps) byId[host.plan.tasks[dep]!.id] = host.outputOf(dep)
  return byId
}

/**
 * The attempts in flight of one run, through the executor seam, each with its timeout on
 * the run's clock. An attempt holds its slot until the executor answers, also after a
 * timeout or an abort.
 */
export class Attempts {
  readonly #host: AttemptHost
  readonly #current: (InFlight | undefined)[]
  /** Attempts that gave their slot back while they wait for tasks they spawned, and since when. */
  readonly #parked = new Map<number, number>()
  /** Attempts held by their approve gate before merge: they hold no slot until they end. */
  readonly #held = new Set<number>()
  /** Per task: time its attempts spent parked (RunResult `waitedMs`). */
  readonly #waitedMs = new Map<number, number>()
  #inFlight = 0

  constructor(host: AttemptHost) {
    this.#host = host
    this.#current = new Array(host.plan.tasks.length)
  }

  /** Attempts holding a slot. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** The task's attempt waits for tasks it spawned: it gives its slot back until {@link unpark}. */
  park(index: number): void {
    if (this.#current[index] === undefined || this.#parked.has(index)) return
    this.#parked.set(index, this.#host.clock.now())
    this.#inFlight--
  }

  /** The task's attempt takes a slot again. */
  unpark(index: number): void {
    if (!this.#endPark(index)) return
    this.#inFlight++
  }

  /** Time the task's attempts spent waiting for tasks they spawned, holding no slot. */
  waitedMs(index: number): number | undefined {
    return this.#waitedMs.get(index)
  }

  #endPark(index: number): boolean {
    const since = this.#parked.get(index)
    if (since === undefined) return false
    this.#parked.delete(index)
    this.#waitedMs.set(index, (this.#waitedMs.get(index) ?? 0) + Math.max(0, this.#host.clock.now() - since))
    return true
  }

  isParked(index: number): boolean {
    return this.#parked.has(index)
  }

  /** Stops the task's current attempt, if any (timeout, cancel); its slot stays held until it answers. */
  abort(index: number): void {
    const current = this.#current[index]
    current?.handle.abort()
    if (current?.decide === undefined) return
    // Held for approval: it counts in flight again until its workspace is discarded, so the run
    // does not settle (and close its worktrees) under it (regression: its task branch outlived the run).
    this.#held.delete(index)
    this.#inFlight++
    current.decide(false)
    current.decide = undefined
  }

  /**
   * The held attempt was approved: its merge goes on, still without a slot (merges run one at
   * a time on the integration branch anyway), and its timeout ticks again for what was left.
   */
  approve(index: number): void {
    const current = this.#current[index]
    if (current?.decide === undefined) return
    const decide = current.decide
    current.decide = undefined
    this.#arm(this.#host.plan.tasks[index]!, current)
    decide(true)
  }

  /** The attempt succeeded and waits for approval before its merge: no slot, no timeout, until {@link approve} or {@link abort}. */
  #hold(task: CompiledTask, attempt: number, review: MergeReview): Promise<boolean> {
    const current = this.#current[task.index]
    if (current === undefined || current.attempt !== attempt || this.#parked.has(task.index)) return Promise.resolve(false)
    const host = this.#host
    host.clock.clearTimeout(current.timer)
    current.leftMs = Math.max(0, current.leftMs - (host.clock.now() - current.armedAt))
    this.#held.add(task.index)
    this.#inFlight--
    return new Promise((resolve) => {
      current.decide = resolve
      host.onHeld(task, review)
    })
  }

  #arm(task: CompiledTask, inFlight: InFlight): void {
    const host = this.#host
    inFlight.armedAt = host.clock.now()
    inFlight.timer = host.clock.setTimeout(() => {
      if (this.#current[task.index] === inFlight) host.onTimeout(task.index)
    }, inFlight.leftMs)
  }

  /** Starts attempt `attempt` of `task`. */
  start(task: CompiledTask, attempt: number, timeoutMs: number): void {
    const host = this.#host
    const handle = host.executor.start(
      {
        runId: host.id,
        taskId: task.id,
        attempt,
        agent: task.agentSpec,
        input: task.input,
        dependencies: dependencyOutputs(host, task),
        model: host.config.models[task.agent],
        timeoutMs,
        graceMs: host.config.cancelGraceMs,
        baseDir: host.plan.baseDir,
        runDir: host.runDir,
        workspace: undefined,
        port: undefined,
      },
      attemptListener(host, task, attempt, task.approval === 'merge' ? (review) => this.#hold(task, attempt, review) : undefined),
    )
    const inFlight: InFlight = { attempt, handle, timer: undefined, leftMs: timeoutMs, armedAt: 0, decide: undefined }
    this.#current[task.index] = inFlight
    this.#inFlight++
    this.#arm(task, inFlight)
    void handle.result.then((result) => {
      host.clock.clearTimeout(inFlight.timer)
      inFlight.decide = undefined
      const current = this.#current[task.index] === inFlight
      const parked = current && (this.#endPark(task.index) || this.#held.delete(task.index))
      if (this.#current[task.index] === inFlight) {
        this.#current[task.index] = undefined
        host.onAnswer(task, result)
      }
      if (!parked) this.#inFlight--
      host.onFreed(task, parked)
    })
  }
}

/** The `ctx` bridge: what an agent's progress, logs, usage, claims and limits turn into. */
function attemptListener(
  host: AttemptHost,
  task: CompiledTask,
  attempt: number,
  awaitApproval: AttemptListener['awaitApproval'],
): AttemptListener {
  const { id: runId, clock } = host
  return {
    ...(awaitApproval === undefined ? {} : { awaitApproval }),
    onProgress: (fraction, message) =>
      host.emit('task:progress', {
        runId,
        taskId: task.id,
        attempt,
        fraction: Math.min(1, Math.max(0, Number(fraction) || 0)),
        message,
        at: clock.now(),
      }),
    onLog: (message) => host.emit('task:log', { runId, taskId: task.id, attempt, message, at: clock.now() }),
    onAcquire: (name, signal) =>
      host.limits?.acquire(name, signal) ?? Promise.reject(new TroupeError('ERR_ARGUMENT_INVALID', `ctx.acquire(${JSON.stringify(name)}): no limits on this runtime`)),
    onUsage: (report) => host.onUsage(task, report),
    onRateLimited: (until) => host.limits?.pauseUntil(task.uses, until, task.id, runId),
    onClaim: (path) => host.claims?.claim(runId, task.id, path) ?? { granted: true },
    onRelease: (path) => {
      // A task kept QUEUED by this claim may pass its gate now.
      if (host.claims?.unclaim(runId, task.id, path)) host.dispatcher.request()
    },
    onSpawn: (tasks, options) => host.onSpawn(task, attempt, tasks, options.wait),
    onWaitTasks: (request) => host.onWaitTasks(task, attempt, request),
    mayRepair: () => host.mayRepair?.(task),
    scratchpad: () => host.scratchpad?.(),
    mailbox: () => host.mailbox?.(),
  }
}
