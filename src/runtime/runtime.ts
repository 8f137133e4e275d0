import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { join, resolve } from 'node:path'
import { ClaimRegistry } from './admission/claims.ts'
import { Governor, type ResourceProbe } from './governor/governor.ts'
import { Limits, type LimitPause } from './admission/limits.ts'
import { SystemProbe } from './governor/system-probe.ts'
import { DemandBook } from './governor/demand.ts'
import { writeDemandFile } from './governor/demand-file.ts'
import type { FitGate, HoldNotice } from './admission/fit-gate.ts'
import { createRuntimeGovernor } from './admission/runtime-governor.ts'
import { MeasuredExecutor } from './execution/measured-executor.ts'
import { isResolvedConfig, resolveConfig, type ResolvedConfig } from './core/config.ts'
import { RUN_OPTION_KEYS, RUNTIME_OPTION_KEYS, checkOptions, pickOptions, type CloseOptions, type RunOptions, type RuntimeOptions, type RuntimeStatus } from './options.ts'
import { Dispatcher } from './admission/dispatcher.ts'
import { TroupeError, describeValue, isTroupeError } from './core/errors.ts'
import { reportListenerError, type GovernorSampleEvent, type RunEvents } from './report/events.ts'
import { STRATEGIES, type CompiledPlan, type Plan } from './plan/plan.ts'
import { compilePlan } from './plan/load-plan.ts'
import { checkRunStrategy } from './plan/stages.ts'
import { isStaged } from './plan/strategies.ts'
import { RunPlan } from './plan/run-plan.ts'
import type { Executor } from './execution/executor.ts'
import { parseRedisUrl } from './execution/redis/connection.ts'
import { createRedisBackend } from './execution/redis/redis-backend.ts'
import { createLocalBackend } from './execution/local-backend.ts'
import type { Backend } from './execution/backend.ts'
import { MAILBOX_FILE, Mailbox } from './coordination/mailbox.ts'
import { SCRATCHPAD_FILE, Scratchpad, type Note } from './coordination/scratchpad.ts'
import type { RunResult } from './report/result.ts'
import { Journal, definitionHashes } from './journal/journal.ts'
import { CACHE_DIR, CacheStore } from './cache/cache-store.ts'
import { CachingExecutor, type CacheTask } from './cache/caching-executor.ts'
import { LogStore } from './journal/log-store.ts'
import { ApprovalRequests } from './journal/approval-requests.ts'
import { ensureCheckpointDir, isRunId, runDir } from './journal/paths.ts'
import { retryDelayFor } from './core/retry-policy.ts'
import { FileRollback } from './journal/rollback.ts'
import { StageCheckpoint } from './journal/stage-checkpoint.ts'
import type { Gate } from './admission/gate.ts'
import { systemClock, type Clock } from './core/clock.ts'
import { Run, checkMaxParallel } from './run.ts'
import { PortBlocks } from './workspace/ports.ts'
import { RunWorkspaceSession } from './workspace/run-workspace-session.ts'
import { WorkspaceExecutor } from './workspace/workspace-executor.ts'

export type { CloseOptions, RunOptions, RuntimeOptions, RuntimeStatus } from './options.ts'

/** Events of a runtime: every run's events, plus `run:created` with the Run itself. */
export interface RuntimeEvents extends RunEvents {
  'run:created': [Run]
  /** Every governor reading, with the decision it led to. */
  'governor:sample': [GovernorSampleEvent]
  /** A ready task does not fit the headroom and stays queued ("held: build needs ~1.0 CPU, 0.2 free"); once per distinct message. */
  'governor:held': [HoldNotice]
}

/**
 * One runtime per process: one worker pool shared by every run, fairly.
 *
 * @example
 * const runtime = createRuntime({ config: { maxParallel: 4 } })
 * const run = runtime.run(plan)
 * run.on('task:state', (e) => console.log(e.taskId, e.state))
 * const result = await run.result
 * await runtime.close()
 */
export class Runtime extends EventEmitter<RuntimeEvents> {
  readonly config: ResolvedConfig
  readonly #clock: Clock
  /** Where attempts run (this machine's pool and processes, Redis workers, or one passed in); the runtime knows only its interface. */
  readonly #backend: Backend
  /** Wraps the backend's executor: every attempt of every run starts here. */
  readonly #executor: Executor
  /** Wraps #executor: worktree tasks run in a git worktree and complete once merged. */
  readonly #workspaces: WorkspaceExecutor
  /** Inside #workspaces: `cache: true` tasks are answered from the task cache when their key has an entry. */
  readonly #caching: CachingExecutor
  /** `<checkpoint.dir>/cache`, made on first use. */
  #cacheStore: CacheStore | undefined
  readonly #dispatcher: Dispatcher
  readonly #claims = new ClaimRegistry()
  /** Each run's scratchpad, handed to its attempts through their listeners. */
  readonly #scratchpads = new Map<string, Scratchpad>()
  /** Each run's messages between tasks (`send_message`, `read_messages`). */
  readonly #mailboxes = new Map<string, Mailbox>()
  readonly #gates: Gate[] = [this.#claims]
  readonly #runs = new Map<string, Run>()
  readonly #limits: Limits
  readonly #governor: Governor<FitGate> | undefined
  /** Per-agent demand (measured CPU and memory), when the governor is on. */
  readonly #demand: DemandBook | undefined
  /** Restores a failed task's claimed files (`checkpoint.rollbackOnFailure`). */
  readonly #rollback: FileRollback | undefined
  /** Pipeline strategy: a stage starts once the previous one is durable in the journal. */
  readonly #stageCheckpoint = new StageCheckpoint()
  /** The probe this runtime made (and closes), when none was injected. */
  readonly #systemProbe: SystemProbe | undefined
  #status: RuntimeStatus = 'open'

  constructor(options: RuntimeOptions = {}) {
    super()
    checkOptions('createRuntime', options)
    this.config = isResolvedConfig(options.config) ? options.config : resolveConfig(options.config ?? {})
    this.#clock = options.clock ?? systemClock
    const backend = options.backend ?? this.config.backend
    this.#backend = typeof backend === 'string' ? this.#builtInBackend(backend) : backend
    const base = this.#backend.executor
    // Measured per agent for the governor's demand estimates (remote workers report theirs too).
    this.#demand = this.config.governor.enabled ? new DemandBook() : undefined
    const measured = this.#demand ? new MeasuredExecutor(base, this.#demand, this.#clock) : base
    // Worktree tasks run in a git worktree of their own, merged back before they complete.
    // Cache hits skip the measurement (no agent ran) but not the worktree: their change is merged like any other.
    this.#caching = new CachingExecutor(measured)
    this.#executor = this.#workspaces = new WorkspaceExecutor(this.#caching, new PortBlocks())
    // The backend's gates bound what it runs (the local one: module agents by the pool's thread
    // slots); each run bounds itself by its maxParallel.
    this.#dispatcher = new Dispatcher(Number.POSITIVE_INFINITY)
    // Gate order, explicit: (governor fit, unshifted by #createGovernor), stage checkpoint (takes
    // nothing, so it refuses before anything is taken), claims, the backend's (thread slots),
    // named limits, rollback snapshot (last: only for a task that will start).
    if (this.config.checkpoint.enabled) this.#gates.unshift(this.#stageCheckpoint)
    this.#gates.push(...this.#backend.gates)
    this.#limits = new Limits(this.config.limits, this.#clock, () => this.#dispatcher.request(), (pause) => this.#onLimitPaused(pause))
    if (Object.keys(this.config.limits).length > 0) this.#gates.push(this.#limits)
    // Last gate: the snapshot is taken only once the task holds its claims and will start.
    this.#rollback = this.config.checkpoint.rollbackOnFailure ? new FileRollback() : undefined
    if (this.#rollback) this.#gates.push(this.#rollback)
    this.#systemProbe = this.config.governor.enabled && options.probe === undefined ? new SystemProbe() : undefined
    this.#governor = this.config.governor.enabled ? this.#createGovernor(options.probe ?? this.#systemProbe!) : undefined
  }

  /**
   * Resolves once the backend can take work: at once for `local`; for Redis after one ping,
   * else rejects with ERR_BACKEND_UNAVAILABLE; for a backend passed in, its `ready()`. Call it
   * before the first run to fail up front.
   */
  async ready(): Promise<void> {
    await this.#backend.ready?.()
  }

  /**
   * The backend a `backend` string names: this machine's, or Redis workers' (which check this
   * machine's module agents before a run). An invalid URL throws ERR_CONFIG_INVALID.
   */
  #builtInBackend(spec: string): Backend {
    const target = spec === 'local' ? undefined : parseRedisUrl(spec)
    const local = createLocalBackend(this.config, {
      clock: this.#clock,
      onError: (error) => reportListenerError(new Error(`worker pool error: ${error.message}`, { cause: error })),
      tools: true,
      // Agents the governor sees mostly waiting share threads: no thread start per sleeping task.
      // Others the pool probes itself (so it does with the governor off).
      ...(this.config.governor.enabled ? { shares: (agent: string) => (this.#governor?.fit?.waits(agent) === true ? true : undefined) } : {}),
    })
    return target === undefined ? local : createRedisBackend(target, local)
  }

  get status(): RuntimeStatus {
    return this.#status
  }

  /** Runs in flight, by id. */
  get runs(): ReadonlyMap<string, Run> {
    return this.#runs
  }

  /**
   * Starts a run of `plan` (a plan object, or one compiled by `compilePlan`/`loadPlan`).
   * Returns at once; the run starts on the next microtask, or with `checkpoint.enabled` once
   * its journal has been read (a `runId` with a journal resumes: completed tasks are reused),
   * so listeners attached now see every event. Throws a TroupeError for an invalid plan or
   * options; with the journal on, `ERR_RUN_LOCKED` while another process runs this id and
   * `ERR_JOURNAL_UNREADABLE` when its journal cannot be resumed from.
   */
  run(plan: Plan | CompiledPlan, options: RunOptions = {}): Run {
    if (this.#status !== 'open') throw new TroupeError('ERR_RUNTIME_CLOSED', `Cannot start a run: the runtime is ${this.#status}`)
    checkOptions('run', options)
    const compiled = isCompiled(plan) ? plan : compilePlan(plan, { baseDir: options.baseDir })
    const strategy = options.strategy ?? compiled.strategy ?? 'concurrent'
    if (!STRATEGIES.includes(strategy)) {
      throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`strategy\` to be one of ${STRATEGIES.join(', ')}, got ${describeValue(strategy)}`)
    }
    // A run-time strategy over a plan compiled for another one: `hybrid` needs stages, and a staged one's dependencies are checked now.
    checkRunStrategy(strategy, compiled)
    const maxParallel = checkMaxParallel(options.maxParallel ?? compiled.maxParallel ?? this.config.maxParallel)
    const id = options.runId ?? `${compiled.name.replace(/[^\w.-]+/g, '-')}-${new Date(this.#clock.now()).toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`
    if (!isRunId(id)) {
      throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`runId\` to be 1-128 letters, digits, '.', '_' or '-' (not "." or ".."), got ${describeValue(id)}`)
    }
    if (this.#runs.has(id)) throw new TroupeError('ERR_ARGUMENT_INVALID', `A run with id "${id}" is already in flight on this runtime`)
    this.#checkQueueBound(compiled.tasks.length)
    this.#limits.check(compiled)
    // Claims compare as real paths under the plan's directory; one outside it is ERR_PLAN_INVALID.
    this.#claims.check(compiled.baseDir, compiled)
    const workspaces = this.#openWorkspaces(compiled, id, options)
    // The run's own view of the plan: tasks added while it runs go here, never into `compiled`.
    const runPlan = new RunPlan(compiled)

    const journal = this.config.checkpoint.enabled
      ? new Journal({
          dir: resolve(this.config.checkpoint.dir),
          runId: id,
          plan: runPlan,
          strategy,
          maxParallel,
          models: this.config.models,
          now: () => this.#clock.now(),
          onStageDurable: () => this.#dispatcher.request(),
        })
      : undefined
    this.#claims.track(id, compiled.baseDir)
    const cached = this.#bindCache(id, runPlan, options, journal)
    const run = new Run({
      id,
      plan: runPlan,
      strategy,
      maxParallel,
      config: this.config,
      executor: this.#executor,
      runDir: journal === undefined ? undefined : join(resolve(this.config.checkpoint.dir), id),
      dispatcher: this.#dispatcher,
      gates: this.#gates,
      claims: this.#claims,
      limits: this.#limits,
      ...(this.#governor ? { governor: this.#governor.track() } : {}),
      clock: this.#clock,
      retryDelay: retryDelayFor(this.config.retry),
      recorder: journal,
      signal: options.signal,
      forward: (name, ...args) => this.#forward(name, ...(args as RuntimeEvents[typeof name])),
      listening: (name) => this.listenerCount(name) > 0,
      scratchpad: () => this.#scratchpads.get(id),
      mailbox: () => this.#mailboxes.get(id),
      ...(workspaces ? { finalize: (result: RunResult) => this.#workspaces.unbind(id).then(() => workspaces.attach(result)) } : {}),
    })
    this.#runs.set(id, run)
    if (cached) {
      // A ready task's cache entry is looked up at once: a hit passes the fit gate without a CPU reservation.
      run.on('task:state', (e) => {
        if (e.state === 'QUEUED' && e.previous === 'PENDING') this.#caching.prefetch(id, e.taskId, () => this.#dispatcher.request())
        // Stored after its agent succeeded, but the task did not complete with it: not a result.
        if (e.state === 'FAILED' || e.state === 'CANCELLED') this.#caching.forget(id, e.taskId)
      })
    }
    void run.result.then(() => {
      this.#claims.forget(id)
      this.#runs.delete(id)
      this.#scratchpads.delete(id)
      this.#mailboxes.delete(id)
      if (cached) this.#caching.unbind(id)
      if (this.#runs.size === 0) this.#governor?.deactivate()
      if (journal !== undefined) this.#saveDemand()
    })
    // Before the run starts, so a probe that answers at once decides its first admissions.
    this.#governor?.activate()
    this.#rollback?.watch(run)
    if (journal !== undefined) LogStore.attach(run, runDir(resolve(this.config.checkpoint.dir), id), { invocation: journal.invocation })
    if (journal !== undefined) ApprovalRequests.attach(run, runDir(resolve(this.config.checkpoint.dir), id), journal.decidedRequests)
    if (journal !== undefined && isStaged(strategy)) {
      this.#stageCheckpoint.track(id, runPlan, journal)
      void run.result.then(() => this.#stageCheckpoint.forget(id))
    }
    this.#forward('run:created', run)
    // The backend readies itself before the first task (the local one checks agent modules and starts threads).
    // A backend passed in that throws instead of rejecting fails the run the same way.
    const parallelism = strategy === 'sequential' ? 1 : maxParallel
    const prepared = new Promise<void>((ready) => ready(this.#backend.prepare?.(compiled, parallelism))).then(
      () => undefined,
      (error: unknown) => error,
    )
    // The journal is read before the run starts, so that it knows which tasks to reuse.
    // The run's scratchpad (restored from <runDir>/scratchpad.jsonl on resume; in memory without a journal).
    const scratchpad = Scratchpad.open(journal === undefined ? undefined : join(resolve(this.config.checkpoint.dir), id, SCRATCHPAD_FILE), (note) =>
      this.#onScratchpadNote(id, note),
    ).then(
      (pad) => void (this.#runs.get(id) === run && this.#scratchpads.set(id, pad)),
      (error: unknown) => reportListenerError(new Error(`scratchpad of run ${id}: ${(error as Error).message}`, { cause: error })),
    )
    // Its messages between tasks, kept the same way in <runDir>/messages.jsonl.
    const mailbox = Mailbox.open(journal === undefined ? undefined : join(resolve(this.config.checkpoint.dir), id, MAILBOX_FILE), {
      isTask: (taskId) => runPlan.byId.has(taskId),
      onMessage: (message) => this.#emitOnRun(id, 'task:message', { runId: id, ...message }),
    }).then(
      (box) => void (this.#runs.get(id) === run && this.#mailboxes.set(id, box)),
      (error: unknown) => reportListenerError(new Error(`mailbox of run ${id}: ${(error as Error).message}`, { cause: error })),
    )
    void Promise.all([journal?.open(), prepared, scratchpad, mailbox]).then(([, problem]) => {
      if (this.#runs.get(id) !== run) return
      run.start()
      if (problem !== undefined) void run.fail(isTroupeError(problem) ? problem.toJSON() : { code: 'ERR_AGENT_LOAD', message: String(problem) })
    })
    return run
  }

  /**
   * Closes the runtime: no new runs; waits for runs in flight (or cancels them with
   * `force`), then stops the worker threads.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#status === 'closed') return
    this.#status = 'closing'
    const runs = [...this.#runs.values()]
    if (options.force) for (const run of runs) void run.cancel('Runtime closed')
    // With force, process groups are killed at once rather than after each attempt's grace.
    // The backend closes its executor: the runtime's wrappers around it hold nothing to close.
    const closing = options.force ? this.#backend.close(true) : undefined
    await Promise.all(runs.map((run) => run.result))
    await (closing ?? this.#backend.close(false))
    this.#governor?.close()
    this.#limits.close()
    await this.#systemProbe?.close()
    this.#status = 'closed'
  }

  /** Per-agent demand estimates (CPU cores, peak MB), e.g. for `troupe plan`; empty when the governor is off. */
  agentDemand(): ReturnType<DemandBook['snapshot']> {
    return this.#demand?.snapshot() ?? {}
  }

  /** `<checkpoint.dir>/demand.json`: what each agent was measured to cost, for `troupe plan`. */
  #saveDemand(): void {
    if (this.#demand === undefined) return
    try {
      writeDemandFile(resolve(this.config.checkpoint.dir), this.#demand.snapshot())
    } catch (error) {
      process.emitWarning(`troupe: cannot store measured agent demand: ${(error as Error).message}`, 'TroupeGovernorWarning')
    }
  }

  /**
   * Routes the run's `cache: true` tasks (the plan's own; tasks added at run time are never
   * cached) through the task cache, with their definition hashes. False when it has none.
   */
  #bindCache(runId: string, plan: RunPlan, options: RunOptions, journal: Journal | undefined): boolean {
    const cacheable = plan.tasks.filter((task) => task.cache)
    if (cacheable.length === 0) return false
    // The journal hashed every task already (module files read once); without one, hash here.
    const hashes = journal?.definitionHashes ?? definitionHashes(plan, this.config.models, new Map())
    const worktrees = plan.workspaces?.taskIds
    const tasks = new Map<string, CacheTask>()
    for (const task of cacheable) {
      const deps = task.deps.map((dep) => plan.tasks[dep]!.id)
      tasks.set(task.id, { definitionHash: hashes[task.index]!, inputs: task.inputs, deps, worktree: worktrees?.has(task.id) === true })
    }
    const dir = resolve(this.config.checkpoint.dir)
    if (this.#cacheStore === undefined) {
      ensureCheckpointDir(dir)
      this.#cacheStore = new CacheStore(join(dir, CACHE_DIR), this.config.cache.maxBytes)
    }
    this.#caching.bind(runId, { store: this.#cacheStore, tasks, read: options.cache ?? true, baseDir: plan.baseDir })
    return true
  }

  /** Worktree plans: checks the repository (ERR_PLAN_INVALID), then routes the run's worktree tasks through it until the run ends. */
  #openWorkspaces(plan: CompiledPlan, runId: string, options: RunOptions): RunWorkspaceSession | undefined {
    if (plan.workspaces === undefined) return undefined
    const worktreesDir = join(resolve(this.config.checkpoint.dir), runId, 'worktrees')
    ensureCheckpointDir(resolve(this.config.checkpoint.dir))
    const session = new RunWorkspaceSession({ spec: plan.workspaces, runId, repoDir: plan.baseDir, worktreesDir, keep: options.keepWorktrees ?? false })
    this.#workspaces.bind(runId, session.binding)
    return session
  }

  #createGovernor(probe: ResourceProbe): Governor<FitGate> {
    return createRuntimeGovernor({
      config: this.config,
      demand: this.#demand!,
      clock: this.#clock,
      dispatcher: this.#dispatcher,
      gates: this.#gates,
      probe,
      machine: this.#systemProbe?.limits,
      onSample: (event) => this.#forward('governor:sample', event),
      onHeld: (notice) => this.#forward('governor:held', notice),
      exempt: (runId, task) => this.#caching.isHit(runId, task.id),
      onTransition: (name, event) => {
        this.#forward(name, event)
        for (const run of this.#runs.values()) {
          try {
            run.emit(name, event)
          } catch (error) {
            reportListenerError(error)
          }
        }
      },
    })
  }

  /** A provider rate limit paused shared limits: `limit:paused` on the task's run (and so on the runtime). */
  #onLimitPaused(pause: LimitPause): void {
    this.#emitOnRun(pause.runId, 'limit:paused', { runId: pause.runId ?? '', taskId: pause.taskId, limits: pause.limits, until: pause.until, at: pause.at })
  }

  /** `scratchpad:note` on the note's run (and so on the runtime). */
  #onScratchpadNote(runId: string, note: Note): void {
    this.#emitOnRun(runId, 'scratchpad:note', { runId, taskId: note.taskId, at: note.at, text: note.text })
  }

  /** An event raised outside a run's own machinery: on that run's handle, then on the runtime. */
  #emitOnRun<K extends 'limit:paused' | 'scratchpad:note' | 'task:message'>(runId: string | undefined, name: K, ...args: RunEvents[K]): void {
    const run = runId === undefined ? undefined : this.#runs.get(runId)
    try {
      if (run !== undefined) (run.emit as (name: K, ...args: RunEvents[K]) => boolean).call(run, name, ...args)
    } catch (error) {
      reportListenerError(error)
    }
    this.#forward(name, ...(args as RuntimeEvents[K]))
  }

  #checkQueueBound(adding: number): void {
    let queued = 0
    for (const run of this.#runs.values()) queued += run.plan.tasks.length
    if (queued + adding > this.config.maxQueuedTasks) {
      throw new TroupeError(
        'ERR_QUEUE_FULL',
        `Cannot accept ${adding} more tasks: ${queued} are already queued on this runtime and config.maxQueuedTasks is ${this.config.maxQueuedTasks}`,
      )
    }
  }

  #forward<K extends keyof RuntimeEvents>(name: K, ...args: RuntimeEvents[K]): void {
    if (this.listenerCount(name as string) === 0) return
    try {
      ;(this.emit as (name: K, ...args: RuntimeEvents[K]) => boolean)(name, ...args)
    } catch (error) {
      reportListenerError(error)
    }
  }
}

/** Creates a runtime. See {@link Runtime}. */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  return new Runtime(options)
}

/** Runs one plan on a fresh runtime and closes it: the shortest path from a plan to its result. */
export async function runPlan(plan: Plan | CompiledPlan, options: RunOptions & RuntimeOptions = {}): Promise<RunResult> {
  checkOptions('runPlan', options)
  const runtime = createRuntime(pickOptions(options, RUNTIME_OPTION_KEYS))
  try {
    return await runtime.run(plan, pickOptions(options, RUN_OPTION_KEYS)).result
  } finally {
    await runtime.close()
  }
}

function isCompiled(plan: Plan | CompiledPlan): plan is CompiledPlan {
  return (plan as CompiledPlan).byId instanceof Map
}
