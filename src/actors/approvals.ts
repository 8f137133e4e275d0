import type { GateLedger } from '../runtime/admission/gate-ledger.ts'
import { TroupeError, type SerializedError } from '../runtime/core/errors.ts'
import type { ApprovalEvent, ApprovalSource } from '../runtime/report/events.ts'
import type { MergeReview } from '../runtime/execution/executor.ts'
import type { ApprovalPoint, CompiledTask } from '../runtime/plan/plan.ts'
import type { RunPlan } from '../runtime/plan/run-plan.ts'
import type { DagScheduler } from '../runtime/schedule/scheduler.ts'
import type { Attempts } from './attempts.ts'
import type { RunInit, RunOutlet } from './run-init.ts'
import type { TaskActors } from './task-actors.ts'

/** Longest rejection reason kept (the rest is cut, ending in `…`). */
export const MAX_REJECT_REASON = 2_000

/** What the approvals work on: the run machine's parts. */
export interface ApprovalHost {
  readonly init: RunInit
  readonly plan: RunPlan
  readonly out: RunOutlet
  readonly scheduler: DagScheduler
  readonly tasks: TaskActors
  readonly attempts: Attempts
  readonly ledger: GateLedger
}

/** A task held by its approve gate. */
export interface AwaitingApproval {
  readonly taskId: string
  readonly before: ApprovalPoint
  /** When it started waiting (the run's clock). */
  readonly since: number
  /** Before merge: the worktree and branch holding its work. */
  readonly review?: MergeReview
}

/**
 * A task's `approve` gate (docs/plans.md#approval-gates). Before start, a task whose
 * dependencies are done is taken out of the ready set (as a retrying task is) and waits in
 * AWAITING_APPROVAL holding nothing: no slot, no gate, no timeout; approved, it goes back to
 * the ready set. Before merge, the attempt's workspace calls back once the agent succeeded:
 * the attempt parks (like a parent in `ctx.spawn`: no slot, its gates suspended through the
 * ledger, its timeout stopped) until it is approved (the merge goes on) or rejected (the task
 * FAILS with ERR_APPROVAL_REJECTED and its worktree is discarded). Each decision is journaled.
 */
export class Approvals {
  readonly #host: ApprovalHost
  readonly #awaiting = new Map<number, AwaitingApproval>()
  /** Tasks approved before they reached their gate (an earlier invocation's approval, a request read on resume). */
  readonly #preApproved = new Set<number>()

  constructor(host: ApprovalHost) {
    this.#host = host
  }

  /** Tasks awaiting approval now, in the order they started waiting. */
  awaiting(): readonly AwaitingApproval[] {
    return [...this.#awaiting.values()]
  }

  /**
   * The scheduler's ready gate: whether a task whose dependencies are done may join the ready
   * set, or is held by its gate before start (unless approved already; see {@link holdAtStart}).
   */
  admitsAtStart(task: number): boolean {
    return this.#host.plan.tasks[task]!.approval !== 'start' || this.#preApproved.delete(task)
  }

  /** A task the ready gate held: it waits in AWAITING_APPROVAL, out of the ready set, until approved. */
  holdAtStart(task: number): void {
    this.#hold(task, 'start', undefined)
  }

  /** Before merge: the attempt succeeded and parked; its gates wait suspended. */
  heldAtMerge(task: CompiledTask, review: MergeReview): void {
    const { ledger, init } = this.#host
    ledger.suspend(task, 'awaiting approval before merge')
    init.dispatcher.release()
    this.#hold(task.index, 'merge', review)
    if (this.#preApproved.delete(task.index)) this.#approveHeld(task.index, 'journal')
  }

  /** Approves an earlier invocation's decision or a request read on resume, for when the task reaches its gate. */
  preApprove(index: number): void {
    if (this.#awaiting.has(index)) this.#approveHeld(index, 'journal')
    else this.#preApproved.add(index)
  }

  /** `Run.approve`: throws ERR_APPROVAL_UNKNOWN_TASK / ERR_APPROVAL_NOT_AWAITING. */
  approve(taskId: string, source: ApprovalSource, request?: string): void {
    this.#approveHeld(this.#awaitingIndex(taskId), source, request)
  }

  /** `Run.reject`: the task FAILS with ERR_APPROVAL_REJECTED, the (sanitised) reason in its message. */
  reject(taskId: string, reason: string, source: ApprovalSource, request?: string): void {
    const index = this.#awaitingIndex(taskId)
    const text = approvalReason(reason)
    const error: SerializedError = {
      code: 'ERR_APPROVAL_REJECTED',
      message: `Task "${taskId}" was rejected: ${text === '' ? '(no reason given)' : text}`,
    }
    this.#decided(index, { decision: 'rejected', reason: text }, source, request)
    this.#host.tasks.send(index, { type: 'REJECT', error })
  }

  /** The task left AWAITING_APPROVAL other than by a decision (cancelled, skipped, its attempt died): forget it. */
  left(index: number): void {
    this.#awaiting.delete(index)
  }

  #approveHeld(index: number, source: ApprovalSource, request?: string): void {
    const held = this.#awaiting.get(index)!
    const { tasks, scheduler, init, attempts, ledger, plan } = this.#host
    this.#decided(index, { decision: 'approved' }, source, request)
    tasks.send(index, { type: 'APPROVE' })
    if (held.before === 'start') {
      scheduler.requeue(index)
      init.dispatcher.request()
    } else {
      // Not free yet: the ledger takes them back when it releases them at the attempt's end.
      ledger.resume(plan.tasks[index]!, 'approved')
      attempts.approve(index)
    }
  }

  #hold(index: number, before: ApprovalPoint, review: MergeReview | undefined): void {
    const { init, plan, tasks, out } = this.#host
    const since = init.clock.now()
    const taskId = plan.tasks[index]!.id
    this.#awaiting.set(index, { taskId, before, since, ...(review === undefined ? {} : { review }) })
    tasks.send(index, { type: 'HOLD' })
    init.recorder?.approval?.({ task: taskId, state: 'awaiting', before, at: since })
    out.emit('task:approval', { runId: init.id, taskId, state: 'awaiting', before, at: since })
  }

  #decided(
    index: number,
    decision: Pick<ApprovalEvent, 'reason'> & { decision: 'approved' | 'rejected' },
    source: ApprovalSource,
    request: string | undefined,
  ): void {
    const held = this.#awaiting.get(index)!
    this.#awaiting.delete(index)
    const { init, out } = this.#host
    const at = init.clock.now()
    const reason = decision.reason === undefined ? {} : { reason: decision.reason }
    const requested = request === undefined ? {} : { request }
    init.recorder?.approval?.({ task: held.taskId, state: decision.decision, before: held.before, by: source, at, ...reason, ...requested })
    out.emit('task:approval', {
      runId: init.id,
      taskId: held.taskId,
      state: decision.decision,
      before: held.before,
      by: source,
      at,
      ...reason,
    })
  }

  #awaitingIndex(taskId: string): number {
    const index = this.#host.plan.byId.get(taskId)
    if (index === undefined) {
      throw new TroupeError(
        'ERR_APPROVAL_UNKNOWN_TASK',
        `Cannot decide on task ${JSON.stringify(approvalReason(taskId, 200))}: run "${this.#host.init.id}" has no such task`,
      )
    }
    if (!this.#awaiting.has(index)) {
      const state = this.#host.tasks.stateOf(index)
      throw new TroupeError('ERR_APPROVAL_NOT_AWAITING', `Task "${taskId}" is not awaiting approval: it is ${state}`)
    }
    return index
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+/g

/** A reason as given by a person or a page: one line, no control or direction characters, at most `max` characters. */
export function approvalReason(reason: unknown, max = MAX_REJECT_REASON): string {
  const text = String(reason ?? '')
    .replace(CONTROL, ' ')
    .trim()
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}
