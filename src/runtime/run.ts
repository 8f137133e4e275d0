import { EventEmitter } from 'node:events'
import type { RunInit } from '../actors/run-init.ts'
import { RunMachine } from '../actors/run-machine.ts'
import type { TaskState } from './core/task-state.ts'
import { TroupeError, describeValue, type SerializedError } from './core/errors.ts'
import { reportListenerError, type RunEvents } from './report/events.ts'
import type { RunResult } from './report/result.ts'
import type { CompiledPlan, Strategy, TaskSpec } from './plan/plan.ts'

import type { AwaitingApproval } from '../actors/approvals.ts'
import type { ApprovalRequest } from './journal/approval-requests.ts'

export type { RunInit } from '../actors/run-init.ts'
export type { AwaitingApproval } from '../actors/approvals.ts'

/**
 * Checks a `maxParallel` option once, wherever it comes from (plan, config, run options,
 * `setMaxParallel`).
 */
export function checkMaxParallel(value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`maxParallel\` to be an integer >= 1, got ${describeValue(value)}`)
  }
  return value as number
}

/**
 * A run of a plan on a runtime: a thin handle on its {@link RunMachine}, which owns the task
 * actors, the schedule, the timers and the run's lifecycle. Emits the run's events.
 */
export class Run extends EventEmitter<RunEvents> {
  readonly id: string
  /** Resolves with the RunResult once every task has ended. Never rejects. */
  readonly result: Promise<RunResult>
  readonly #init: RunInit
  readonly #machine: RunMachine

  constructor(init: RunInit) {
    super()
    this.id = init.id
    this.#init = init
    this.#machine = new RunMachine(init, {
      emit: (name, ...args) => this.#emit(name, ...args),
      listening: (name) => this.listenerCount(name) > 0 || init.listening(name),
    })
    this.result = this.#machine.result
  }

  /** Tasks run at once at most, in this run (1 for the sequential strategy). */
  get maxParallel(): number {
    return this.#machine.maxParallel
  }

  /** Changes how many tasks of this run may run at once; takes effect at the next start. */
  setMaxParallel(value: number): void {
    this.#machine.maxParallel = checkMaxParallel(value)
  }

  /**
   * Changes this run's `budget.maxCostUsd` (a number > 0, or null for none). A run paused by
   * its budget (`onExceeded: "pause"`: running tasks finish, none starts) goes on when its
   * spend is below the new budget — until it settles `paused` once nothing runs; after that,
   * resume it from its journal with a larger budget.
   */
  setBudget(maxCostUsd: number | null): void {
    if (maxCostUsd !== null && !(typeof maxCostUsd === 'number' && Number.isFinite(maxCostUsd) && maxCostUsd > 0)) {
      throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`maxCostUsd\` to be a number > 0 or null, got ${describeValue(maxCostUsd)}`)
    }
    this.#machine.setBudget(maxCostUsd)
  }

  /** `running`, `paused` (budget `pause`: nothing starts until {@link setBudget} raises it), `stopping`, `recording` or `ended`. */
  get phase(): 'running' | 'paused' | 'stopping' | 'recording' | 'ended' {
    return this.#machine.lifecycle
  }

  get strategy(): Strategy {
    return this.#init.strategy
  }

  get plan(): CompiledPlan {
    return this.#init.plan
  }

  /**
   * Tasks started and not ended (running, waiting, or waiting to retry), with or without an
   * actor; a task only queued or ended counts none.
   */
  get liveTasks(): number {
    return this.#machine.liveActors
  }

  /**
   * Adds tasks to the running DAG: the same fields as a plan's tasks; `dependsOn` may name
   * tasks of the run or of this call. Returns their ids. Throws a TroupeError with the plan's
   * code (ERR_PLAN_INVALID, ERR_PLAN_DUPLICATE_ID, ERR_PLAN_UNKNOWN_DEPENDENCY, ERR_PLAN_CYCLE)
   * when any is invalid, adding none; ERR_QUEUE_FULL past `config.maxQueuedTasks`;
   * ERR_ARGUMENT_INVALID once the run is stopping or over. Added tasks are journaled: a
   * resumed run adds them again and reuses those that completed.
   */
  addTasks(tasks: readonly TaskSpec[]): readonly string[] {
    const addition = this.#machine.addTasks(tasks, 'Run.addTasks')
    return addition.tasks.map((index) => this.#init.plan.tasks[index]!.id)
  }

  /**
   * Approves task `taskId`, awaiting approval (its `approve` gate): before start it is queued,
   * before merge its worktree is merged. Throws ERR_APPROVAL_UNKNOWN_TASK for a task the run
   * does not have, ERR_APPROVAL_NOT_AWAITING for one that is not awaiting approval.
   */
  approve(taskId: string): void {
    this.#machine.approve(taskId, 'library')
  }

  /**
   * Rejects task `taskId`, awaiting approval: it FAILS with ERR_APPROVAL_REJECTED, whose
   * message carries `reason` (made one line, without control characters, at most 2,000
   * characters); before merge its worktree is discarded. Throws as {@link approve}.
   */
  reject(taskId: string, reason = ''): void {
    this.#machine.reject(taskId, reason, 'library')
  }

  /** Tasks awaiting approval now, in the order they started waiting. */
  awaitingApproval(): readonly AwaitingApproval[] {
    return this.#machine.awaitingApproval()
  }

  /** Decides on a task from an approval request (`troupe approve`, the dashboard): see ApprovalRequests. */
  decide(request: ApprovalRequest): void {
    if (request.decision === 'approve') this.#machine.approve(request.task, request.by, request.id)
    else this.#machine.reject(request.task, request.reason ?? '', request.by, request.id)
  }

  /** The current state of a task. */
  stateOf(taskId: string): TaskState | undefined {
    const index = this.#init.plan.byId.get(taskId)
    return index === undefined ? undefined : this.#machine.stateOf(index)
  }

  /**
   * Cancels the run: tasks not yet ended become CANCELLED; running attempts are aborted
   * (agents watching `ctx.signal` get `config.cancelGraceMs` to stop, then their thread is
   * terminated). Resolves with the result.
   */
  cancel(reason = 'Run cancelled'): Promise<RunResult> {
    this.#machine.stop({ kind: 'cancel', error: { code: 'ERR_CANCELLED', message: reason } })
    return this.result
  }

  /**
   * Stops the run because it cannot succeed: like {@link cancel}, but the run ends `failed`,
   * with `error` as the run's and the cancelled tasks' error. Resolves with the result.
   */
  fail(error: SerializedError): Promise<RunResult> {
    this.#machine.stop({ kind: 'fail', error })
    return this.result
  }

  /** Starts the run. Called once by the runtime. */
  start(): void {
    const signal = this.#init.signal
    if (signal) {
      const cancel = () => void this.cancel(`Run cancelled: ${String(signal.reason ?? 'aborted')}`)
      if (signal.aborted) queueMicrotask(cancel)
      else signal.addEventListener('abort', cancel, { once: true })
    }
    this.#machine.start()
  }

  #emit<K extends keyof RunEvents>(name: K, ...args: RunEvents[K]): void {
    this.#init.forward(name, ...args)
    if (this.listenerCount(name as string) === 0) return
    try {
      ;(this.emit as (name: K, ...args: RunEvents[K]) => boolean)(name, ...args)
    } catch (error) {
      reportListenerError(error)
    }
  }
}
