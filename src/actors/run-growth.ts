import type { GateLedger } from '../runtime/admission/gate-ledger.ts'
import { TroupeError, isTroupeError } from '../runtime/core/errors.ts'
import type { SpawnAnswer, WaitedTask, WaitTasksAnswer, WaitTasksRequest } from '../runtime/execution/executor.ts'
import { descendants } from '../runtime/plan/graph.ts'
import type { CompiledTask } from '../runtime/plan/plan.ts'
import type { Addition, RunPlan } from '../runtime/plan/run-plan.ts'
import { stageOrder } from '../runtime/plan/stages.ts'
import { isStaged } from '../runtime/plan/strategies.ts'
import type { DagScheduler, Transition } from '../runtime/schedule/scheduler.ts'
import type { Attempts } from './attempts.ts'
import { effectiveMaxParallel, type RunInit, type RunOutlet } from './run-init.ts'
import type { LifecycleState, StopReason } from './run-lifecycle.ts'
import { SpawnWaits } from './spawn-waits.ts'
import type { TaskActors } from './task-actors.ts'

/** What a run's growth works on: the run machine's parts. */
export interface GrowthHost {
  readonly init: RunInit
  readonly plan: RunPlan
  readonly out: RunOutlet
  readonly scheduler: DagScheduler
  readonly tasks: TaskActors
  readonly attempts: Attempts
  /** What each task holds of the gates. */
  readonly ledger: GateLedger
  /** The strategy keeps barriers (waves, pipeline, hybrid). */
  readonly barriers: boolean
  lifecycle(): LifecycleState
  /** Hands the scheduler's transitions to the task actors. */
  apply(transition: Transition): void
  scheduleDrain(): void
  /** Stops the run (see RunMachine.stop). */
  stop(reason: StopReason): void
}

/**
 * How a run grows while it runs: tasks added by `Run.addTasks`, `ctx.spawn` and the
 * `add_tasks` tool (validated by the run's plan, journaled, announced, then scheduled like
 * any other), and the parents waiting for the tasks they spawned, which give their slot
 * back while they wait ({@link SpawnWaits}).
 */
export class RunGrowth {
  readonly #host: GrowthHost
  readonly #waits: SpawnWaits
  /** Tasks whose attempt sits in `wait_tasks` (or `add_tasks` with wait), with how many such calls: each a live process holding no slot. */
  readonly #toolWaiters = new Map<number, number>()
  /** Tasks added to the run so far (counted once from the plan: a resumed run holds its earlier additions). */
  #added: number | undefined

  constructor(host: GrowthHost) {
    this.#host = host
    this.#waits = new SpawnWaits({
      isEnded: (task) => host.tasks.resultOf(task) !== undefined,
      clock: host.init.clock,
      resumable: () => host.scheduleDrain(),
      park: (parent) => {
        host.attempts.park(parent)
        // RUNNING → WAITING: the task's state says it holds no slot (and counts out of the working tasks).
        host.tasks.send(parent, { type: 'WAIT' })
        host.ledger.suspend(host.plan.tasks[parent]!, 'waiting for the tasks it spawned')
        host.init.dispatcher.release()
      },
    })
  }

  /** Parents whose awaited tasks have all ended, waiting for a slot. */
  get resumable(): number {
    return this.#waits.resumable
  }

  /** A task ended: the waits it completes are answered, or their parents become resumable. */
  taskEnded(task: number): void {
    this.#waits.ended(task)
  }

  /** A parked attempt ended (timeout, cancel): its waits are forgotten (the ledger balances its gates when it releases them). */
  parkedAttemptEnded(task: CompiledTask): void {
    this.#waits.dropParent(task.index)
    // Its wait_tasks calls are never answered now (the executor answered the CLI when it stopped the attempt).
    this.#toolWaiters.delete(task.index)
  }

  /**
   * Adds tasks to the running DAG (`Run.addTasks`, `ctx.spawn`, the `add_tasks` tool):
   * validated like plan tasks, journaled, announced (`task:added`), then scheduled like any
   * other. Throws a TroupeError (the plan's codes), adding nothing, when they are invalid.
   */
  addTasks(raw: unknown, from: { readonly parent?: CompiledTask; readonly wait?: boolean; readonly source: string }): Addition {
    const { barriers, init, out, plan, scheduler } = this.#host
    const phase = this.#host.lifecycle()
    if (phase !== 'running') {
      throw new TroupeError('ERR_ARGUMENT_INVALID', `${from.source}: run "${init.id}" is ${phase === 'stopping' ? 'stopping' : 'over'} and takes no new tasks`)
    }
    const adding = Array.isArray(raw) ? raw.length : 0
    const bound = init.config.maxQueuedTasks
    if (plan.tasks.length + adding > bound) {
      throw new TroupeError('ERR_QUEUE_FULL', `${from.source}: cannot add ${adding} tasks to run "${init.id}": it has ${plan.tasks.length} and config.maxQueuedTasks is ${bound}`)
    }
    const added = (this.#added ??= plan.tasks.reduce((count, task) => count + (task.added === true ? 1 : 0), 0))
    if (added + adding > init.config.maxAddedTasks) {
      throw new TroupeError(
        'ERR_QUEUE_FULL',
        `${from.source}: cannot add ${adding} tasks to run "${init.id}": ${added} were added already ` +
          `and config.maxAddedTasks is ${init.config.maxAddedTasks}`,
      )
    }
    const parent = from.parent
    const addition = plan.add(raw, {
      source: from.source,
      ...(parent === undefined ? {} : { parent: parent.id }),
      ...(parent !== undefined && from.wait === true ? { waitingParent: parent.index } : {}),
      ...(barriers ? { barrier: true, ...this.#openStage(parent) } : {}),
    })
    if (addition.added.length === 0) return addition
    this.#added = added + addition.added.length
    init.recorder?.tasksAdded(parent?.id, addition.added)
    const at = init.clock.now()
    if (out.listening('task:added')) {
      for (const task of addition.added) {
        out.emit('task:added', {
          runId: init.id,
          taskId: task.id,
          agent: task.agent,
          ...(parent === undefined ? {} : { parent: parent.id }),
          dependsOn: task.deps.map((dep) => plan.tasks[dep]!.id),
          ...(task.description === undefined ? {} : { description: task.description }),
          ...(task.tags.length === 0 ? {} : { tags: task.tags }),
          at,
        })
      }
    }
    this.#host.apply(scheduler.add(addition.added.map((task) => task.index)))
    this.#host.scheduleDrain()
    return addition
  }

  /** Barrier strategies: added tasks join the parent's stage, or the one open now. */
  #openStage(parent: CompiledTask | undefined): { stage?: string } {
    const { init, plan, scheduler } = this.#host
    if (!isStaged(init.strategy)) return {}
    const stage = parent !== undefined ? parent.stage : plan.stages !== undefined ? Object.keys(plan.stages)[scheduler.openGroup] : stageOrder(plan).names[scheduler.openGroup]
    return stage === undefined || stage === '' ? {} : { stage }
  }

  /** `ctx.spawn` / `add_tasks` of attempt `attempt` of `task`: never rejects, a refusal is an answer. */
  spawn(task: CompiledTask, attempt: number, raw: unknown, wait: boolean): Promise<SpawnAnswer> {
    const { plan, tasks } = this.#host
    const source = `task "${task.id}"`
    const state = tasks.stateOf(task.index)
    if ((state !== 'RUNNING' && state !== 'WAITING') || tasks.contextOf(task.index).attempt !== attempt) {
      return Promise.resolve({ ok: false, error: { code: 'ERR_ARGUMENT_INVALID', message: `${source}: attempt ${attempt} has ended; it can add no tasks` } })
    }
    if (wait && !this.#waits.isWaiting(task.index)) {
      for (const gate of this.#host.init.gates) {
        const refusal = gate.checkWait?.(this.#host.init.id, task)
        if (refusal === undefined) continue
        // Every slot would be held by a waiting parent: nothing could ever end those waits. Fail now, not at the timeout.
        const error = { code: 'ERR_SPAWN_WAIT_LIMIT' as const, message: refusal }
        queueMicrotask(() => this.#host.stop({ kind: 'fail', error }))
        return Promise.resolve({ ok: false, error })
      }
    }
    let addition: Addition
    try {
      addition = this.addTasks(raw, { parent: task, wait, source })
    } catch (error) {
      const { code, message } = isTroupeError(error) ? error : { code: 'ERR_PLAN_INVALID' as const, message: String((error as Error)?.message ?? error) }
      return Promise.resolve({ ok: false, error: { code, message } })
    }
    if (!wait) return Promise.resolve({ ok: true, added: addition.tasks.map((i) => plan.tasks[i]!.id) })
    return this.#waits.wait(task.index, attempt, addition.tasks).then(() => this.#waitAnswer(addition.tasks))
  }

  /**
   * `wait_tasks`, and `add_tasks` with `wait` (CLI agents): like `ctx.spawn` with wait, the
   * caller goes WAITING and gives its slot back while its process sits in the tool call, but
   * the answer reports every task (state, output, error) and the wait may time out. Only
   * tasks the caller added, or their descendants, may be waited for (ERR_TASK_NOT_DELEGATED);
   * a task downstream of the caller never could end (ERR_PLAN_CYCLE). A waiting CLI process
   * holds no slot but still lives, so a run lets at most `maxParallel` of them wait at once:
   * past that the call answers ERR_SPAWN_WAIT_LIMIT (the run goes on). Never rejects.
   */
  async waitTasks(task: CompiledTask, attempt: number, request: WaitTasksRequest): Promise<WaitTasksAnswer> {
    const { plan, tasks } = this.#host
    const source = `task "${task.id}"`
    const state = tasks.stateOf(task.index)
    if ((state !== 'RUNNING' && state !== 'WAITING') || tasks.contextOf(task.index).attempt !== attempt) {
      return { ok: false, error: { code: 'ERR_ARGUMENT_INVALID', message: `${source}: attempt ${attempt} has ended; it can wait for no tasks` } }
    }
    let children: readonly number[]
    let added: readonly string[] | undefined
    if (request.add !== undefined) {
      // Refused before anything is added: a refused call changes nothing.
      const refusal = this.#waitRefusal(task)
      if (refusal !== undefined) return refusal
      try {
        const addition = this.addTasks(request.add, { parent: task, wait: true, source })
        children = addition.tasks
        added = children.map((i) => plan.tasks[i]!.id)
      } catch (error) {
        const { code, message } = isTroupeError(error) ? error : { code: 'ERR_PLAN_INVALID' as const, message: String((error as Error)?.message ?? error) }
        return { ok: false, error: { code, message } }
      }
    } else {
      const found = this.#delegated(task, request.ids ?? [])
      if (!found.ok) return found
      children = found.children
      // Tasks that have all ended answer at once: no wait, nothing to refuse.
      const refusal = children.every((c) => tasks.resultOf(c) !== undefined) ? undefined : this.#waitRefusal(task)
      if (refusal !== undefined) return refusal
    }
    this.#toolWaiters.set(task.index, (this.#toolWaiters.get(task.index) ?? 0) + 1)
    let timedOut: boolean
    try {
      timedOut = await this.#waits.wait(task.index, attempt, children, request.timeoutMs)
    } finally {
      const left = (this.#toolWaiters.get(task.index) ?? 1) - 1
      if (left <= 0) this.#toolWaiters.delete(task.index)
      else this.#toolWaiters.set(task.index, left)
    }
    return { ok: true, ...(added === undefined ? {} : { added }), timedOut, tasks: this.#report(children) }
  }

  /** ERR_SPAWN_WAIT_LIMIT when `task` would be one waiting CLI process more than the run's maxParallel; undefined when it may wait. */
  #waitRefusal(task: CompiledTask): Extract<WaitTasksAnswer, { ok: false }> | undefined {
    const { init, plan } = this.#host
    if (this.#toolWaiters.has(task.index)) return undefined
    const cap = effectiveMaxParallel(init.strategy, init.maxParallel)
    const waiting = [...this.#toolWaiters.keys()].map((p) => `"${plan.tasks[p]!.id}"`)
    if (waiting.length < cap) return undefined
    const message =
      `task "${task.id}" cannot wait: ${waiting.length} tasks of run "${init.id}" wait in wait_tasks already (${waiting.slice(0, 5).join(', ')}` +
      `${waiting.length > 5 ? ', …' : ''}), the most maxParallel ${cap} allows: each still has a live process. ` +
      'Add tasks without waiting, wait later, or raise maxParallel'
    return { ok: false, error: { code: 'ERR_SPAWN_WAIT_LIMIT', message } }
  }

  /** The run indices of `ids`, each a task `caller` added or a descendant of one, none downstream of `caller`. */
  #delegated(caller: CompiledTask, ids: readonly string[]): { ok: true; children: readonly number[] } | Extract<WaitTasksAnswer, { ok: false }> {
    const { plan } = this.#host
    const children: number[] = []
    let downstream: Set<number> | undefined
    for (const id of new Set(ids)) {
      const index = plan.byId.get(id)
      if (index === undefined || !this.#addedBy(caller, index)) {
        const what = index === undefined ? `run "${this.#host.init.id}" has no task ${JSON.stringify(id)}` : `task ${JSON.stringify(id)} was not added by it`
        const message = `task "${caller.id}" may wait only for tasks it added (or their descendants): ${what}`
        return { ok: false, error: { code: 'ERR_TASK_NOT_DELEGATED', message } }
      }
      downstream ??= new Set(descendants(plan, caller.index))
      if (downstream.has(index)) {
        const message = `task "${caller.id}" cannot wait for "${id}": it depends on "${caller.id}", so it could only start once the wait ended`
        return { ok: false, error: { code: 'ERR_PLAN_CYCLE', message } }
      }
      children.push(index)
    }
    return { ok: true, children }
  }

  /** Whether task `index` was added by `caller`, or by a task added (transitively) by it. */
  #addedBy(caller: CompiledTask, index: number): boolean {
    const { plan } = this.#host
    for (let parent = plan.tasks[index]!.parent, hops = 0; parent !== undefined && hops <= plan.tasks.length; hops++) {
      if (parent === caller.id) return true
      const at = plan.byId.get(parent)
      parent = at === undefined ? undefined : plan.tasks[at]!.parent
    }
    return false
  }

  /** Each task's state now, with its output or error once it has ended. */
  #report(children: readonly number[]): Record<string, WaitedTask> {
    const { plan, tasks } = this.#host
    const report: Record<string, WaitedTask> = {}
    for (const child of children) {
      const result = tasks.resultOf(child)
      const entry: WaitedTask =
        result === undefined
          ? { state: tasks.stateOf(child) }
          : {
              state: result.state,
              ...(result.state === 'COMPLETED' ? { output: result.output } : {}),
              ...(result.error === undefined ? {} : { error: { code: result.error.code, message: result.error.message } }),
            }
      Object.defineProperty(report, plan.tasks[child]!.id, { value: entry, enumerable: true, writable: true, configurable: true })
    }
    return report
  }

  /** The answer to a wait whose tasks have all ended: outputs by id, or which did not complete. */
  #waitAnswer(children: readonly number[]): SpawnAnswer {
    const { plan, tasks } = this.#host
    const outputs: Record<string, unknown> = {}
    const missing: string[] = []
    for (const child of children) {
      const result = tasks.resultOf(child)!
      const id = plan.tasks[child]!.id
      if (result.state === 'COMPLETED') Object.defineProperty(outputs, id, { value: result.output, enumerable: true, writable: true, configurable: true })
      else if (result.error?.code !== 'ERR_CONDITION_FALSE') missing.push(`"${id}" (${result.state}${result.error ? `: ${result.error.message}` : ''})`)
    }
    const added = children.map((c) => plan.tasks[c]!.id)
    if (missing.length === 0) return { ok: true, added, outputs }
    return { ok: false, error: { code: 'ERR_DEPENDENCY_FAILED', message: `${missing.length} of the ${children.length} tasks waited for did not complete: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}` } }
  }

  /**
   * The oldest resumable parent takes a slot (and its thread slot) again, and is answered:
   * `resumed`; `blocked` when its thread slot is not free yet; `discarded` when its attempt
   * is on its way out (its end gives everything back), so the slot goes to other work.
   */
  resumeParent(): 'resumed' | 'blocked' | 'discarded' {
    const { attempts, ledger, plan, tasks } = this.#host
    const next = this.#waits.nextResumable()!
    const task = plan.tasks[next.parent]!
    const parent = next.parent
    const current = attempts.isParked(parent) && tasks.stateOf(parent) === 'WAITING' && tasks.contextOf(parent).attempt === next.attempt
    if (!current) {
      // The attempt is on its way out (timed out, cancelled): its end gives everything back.
      this.#waits.discardResumable()
      return 'discarded'
    }
    if (!ledger.resume(task, 'its spawned tasks ended')) return 'blocked'
    attempts.unpark(next.parent)
    tasks.send(next.parent, { type: 'RESUME' })
    this.#waits.resumed()
    return 'resumed'
  }
}
