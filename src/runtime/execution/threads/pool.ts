import { availableParallelism } from 'node:os'
import type { MessagePort } from 'node:worker_threads'
import { createRequire } from 'node:module'
import type * as Comlink from 'comlink'
import type { Piscina } from 'piscina'
import { threadEntryFile } from '../../core/worker-file.ts'
import type { CompiledPlan } from '../../plan/plan.ts'
import type { ModuleAgentSpec } from '../../plan/agent-spec.ts'
import { AgentChecker } from './agent-check.ts'
import { classifyWorkerError } from './worker-error.ts'
import { ThreadSlots } from './thread-slots.ts'
import { sharingBalancer, WAITING_TASKS_PER_THREAD } from './thread-balancer.ts'
import { SharedThreads } from './shared-threads.ts'
import { PROBE_DEADLINE_MS, ThreadUse, type ThreadRoute } from './thread-use.ts'
import type { ProcessOwner } from '../../journal/process-ledger.ts'
import type { ProcessGroup } from '../processes/process-group.ts'
import { hostExec } from './host-exec.ts'
import { threadExecArgv } from './exec-argv.ts'
import { ABORT_MESSAGE, CHECK_AGENTS_EXPORT, CTX_PORT_MESSAGE, PROBE_MESSAGE, THREAD_MESSAGE, WARM_EXPORT, type AgentLoadProblem, type AttemptKey, type ClaimResult, type HostApi, type RepairContext, type WorkerResult, type WorkerTask } from './protocol.ts'
import type { AttemptHandle, AttemptListener, AttemptRepair, AttemptRequest, AttemptResult, Executor } from '../executor.ts'

const requireCjs = createRequire(import.meta.url)
/** piscina and comlink (~20 ms to load) are required with the first thread: a plan of commands never loads them. */
const piscinaClass = (): typeof Piscina => (requireCjs('piscina') as typeof import('piscina')).Piscina
const comlink = (): typeof Comlink => requireCjs('comlink') as typeof Comlink

export interface PoolOptions {
  /** Threads kept started even when idle. */
  readonly minThreads: number
  /**
   * Threads at most. `undefined` (no `pool` sizes in the config): sized from the runs — each
   * run pre-starts the threads its module agents can use at once, up to {@link AUTO_MAX_THREADS}.
   */
  readonly maxThreads: number | undefined
  readonly concurrentTasksPerWorker: number
  readonly idleTimeoutMs: number
  /** Heap limit per worker thread (V8 old generation); `null` for none. */
  readonly perAgentMb: number | null
  /** How long loading an agent module may take in the pre-run check. */
  readonly loadTimeoutMs: number
  /** Called for pool-level errors not tied to a task, so they never crash the process. */
  readonly onError: (error: Error) => void
  /**
   * Whether an agent's attempts may share a thread: `true` (the governor measured or was told
   * that it mostly waits), `false` (never), `undefined` or absent (the pool finds out by probing
   * its first attempts, see {@link ThreadUse}). Shared attempts run without piscina's signal, up
   * to {@link WAITING_TASKS_PER_THREAD} on a thread, and one that ignores `ctx.signal` is
   * abandoned, not terminated.
   */
  readonly shares?: (agent: string) => boolean | undefined
  /** How long attempts of an agent being probed wait for the answer (default {@link PROBE_DEADLINE_MS}). */
  readonly probeDeadlineMs?: number
}

/** Threads the pool may start on top of its slots for module agents waiting for tasks they spawned. */
export const PARKED_THREADS = 64


/** The bound on threads when the pool is sized from the runs: the sum of their parallelism, at most this. */
export const AUTO_MAX_THREADS = Math.max(64, 4 * availableParallelism())

/**
 * One attempt in flight: the handle the run holds, the record `ctx` calls reach, and the
 * abort signal piscina gets, in one object. piscina accepts any object shaped like an
 * AbortSignal's listener API; this one holds its single listener in a field and costs a
 * fraction of an AbortController, which matters at thousands of tasks per second.
 */
class PoolAttempt implements AttemptHandle {
  result!: Promise<AttemptResult>
  /** The ctx port of the worker running it, once the agent watches `ctx.signal`. */
  abortPort: MessagePort | undefined = undefined
  /** Limit units held through `ctx.acquire`, by lease id; created on first use. */
  leases: Map<number, () => void> | undefined = undefined
  /** Aborted when the attempt ends, so `ctx.acquire` calls still waiting give up. */
  ended: AbortController | undefined = undefined
  /** Settles an attempt that shares a thread (see SharedThreads) as aborted, its code left running. */
  abandon: (() => void) | undefined = undefined
  /** AbortSignal shape, read by piscina. */
  aborted = false
  reason: unknown = undefined
  /** The attempt's agent, and whether it runs with a probe of its thread's use (see ThreadUse). */
  agent = ''
  probe = false
  /** The attempt's run and task (for `ctx.scratchpad`). */
  runId = ''
  taskId = ''
  /** Whose `ctx.exec` processes are (the run's process ledger, containment). */
  owner: ProcessOwner | undefined = undefined
  /** `ctx.exec` default cwd: the task's workspace, else the plan's directory. */
  cwd = ''
  /** Process groups started with `ctx.exec`, stopped when the attempt ends. */
  groups: Set<ProcessGroup> | undefined = undefined
  #onAbort: (() => void) | undefined = undefined
  #graceTimer: NodeJS.Timeout | undefined = undefined

  constructor(
    readonly id: AttemptKey,
    readonly listener: AttemptListener,
    readonly graceMs: number,
  ) {}

  addEventListener(_event: 'abort', listener: () => void): void {
    this.#onAbort = listener
  }

  removeEventListener(): void {
    this.#onAbort = undefined
  }

  /**
   * Tells an agent that watches `ctx.signal` first and gives it `graceMs` to finish; then
   * its thread is terminated (piscina replaces it).
   */
  abort(): void {
    if (this.aborted || this.#graceTimer !== undefined) return
    if (this.abortPort === undefined || this.graceMs === 0) return this.#terminate()
    this.abortPort.postMessage({ type: ABORT_MESSAGE, key: this.id })
    this.#graceTimer = setTimeout(() => this.#terminate(), this.graceMs)
  }

  /** The attempt settled: stop the grace timer, give back what it still holds. */
  settle(): void {
    if (this.#graceTimer !== undefined) clearTimeout(this.#graceTimer)
    this.ended?.abort(new Error('the attempt has ended'))
    if (this.groups !== undefined) for (const group of this.groups) group.stop(this.graceMs)
    if (this.leases === undefined) return
    for (const release of this.leases.values()) release()
    this.leases.clear()
  }

  #terminate(): void {
    if (this.aborted) return
    this.aborted = true
    if (this.abandon !== undefined) this.abandon()
    else this.#onAbort?.()
  }
}

/**
 * The worker threads of one runtime: a piscina pool plus the comlink host that agents'
 * `ctx` calls reach. Never rejects a run: every outcome, including a dead worker, comes
 * back as a {@link WorkerResult}.
 */
export class WorkerPool implements Executor {
  readonly name = 'local'
  /** Made by the first module attempt or `prepare`: a run of commands, CLIs or LLM calls starts no thread. */
  #threads: { readonly piscina: Piscina<WorkerTask, WorkerResult>; readonly shared: SharedThreads } | undefined
  readonly #startThreads: () => Piscina<WorkerTask, WorkerResult>
  readonly #attempts = new Map<AttemptKey, PoolAttempt>()
  #nextAttempt = 0
  readonly #ports = new Set<MessagePort>()
  readonly #checker: AgentChecker
  /** Checks agents when every pool thread is busy, so that a check never waits behind a task. */
  #spareChecker: Piscina<readonly string[], AgentLoadProblem[]> | undefined
  readonly #filename: string
  readonly #resourceLimits: { readonly maxOldGenerationSizeMb: number } | undefined
  readonly #shares: ((agent: string) => boolean | undefined) | undefined
  #closingForced = false
  /** Threads being terminated because only abandoned attempts ran on them (see SharedThreads). */
  readonly #retiring = new Set<number>()
  /** What each agent's attempts do with their thread, learnt by probing them. */
  readonly #use: ThreadUse
  /**
   * The admission gate for module agents: a task starts only when a thread slot is free.
   * Other kinds need no thread and pass.
   */
  readonly slots: ThreadSlots

  constructor(options: PoolOptions) {
    this.#shares = options.shares
    this.#use = new ThreadUse(availableParallelism(), options.probeDeadlineMs ?? PROBE_DEADLINE_MS)
    const maxThreads = options.maxThreads ?? Math.max(AUTO_MAX_THREADS, options.minThreads)
    this.slots = new ThreadSlots(maxThreads * options.concurrentTasksPerWorker, PARKED_THREADS)
    const filename = threadEntryFile(import.meta.url, 'worker-entry', ['worker-entry.ts', 'protocol.ts'])
    const resourceLimits = options.perAgentMb === null ? undefined : { maxOldGenerationSizeMb: options.perAgentMb }
    this.#filename = filename
    this.#resourceLimits = resourceLimits
    this.#checker = new AgentChecker({ load: (urls, signal) => this.#checkIn(urls, signal), timeoutMs: options.loadTimeoutMs })
    this.#startThreads = () => {
      const piscina = new (piscinaClass())<WorkerTask, WorkerResult>({
        filename,
        minThreads: Math.min(options.minThreads, maxThreads),
        // Attempts waiting in `ctx.spawn(…, { wait: true })` keep their thread but give back
        // their slot: the threads of the tasks they wait for come on top.
        maxThreads: maxThreads + PARKED_THREADS,
        concurrentTasksPerWorker: options.concurrentTasksPerWorker,
        idleTimeout: options.idleTimeoutMs,
        // 'sync' (the default) blocks a worker's event loop between tasks, freezing its timers.
        atomics: 'disabled',
        execArgv: [...threadExecArgv()],
        // The scheduler never hands piscina more than it can run; no queue limit here.
        maxQueue: Infinity,
        ...(resourceLimits === undefined ? {} : { resourceLimits }),
        loadBalancer: sharingBalancer(Math.max(WAITING_TASKS_PER_THREAD, options.concurrentTasksPerWorker), this.#retiring),
      })
      // Without an 'error' listener a worker that fails outside a task crashes the process.
      piscina.on('error', (error: Error) => options.onError(error))
      piscina.on('message', (message: { type?: unknown; port?: MessagePort; key?: unknown; utilization?: unknown; threadId?: unknown }) => {
        if (message?.type === CTX_PORT_MESSAGE && message.port) this.#exposeHost(message.port)
        else if (message?.type === THREAD_MESSAGE && typeof message.key === 'number' && typeof message.threadId === 'number') {
          this.#threads?.shared.located(message.key, message.threadId)
        } else if (message?.type === PROBE_MESSAGE && typeof message.key === 'number' && typeof message.utilization === 'number') {
          const attempt = this.#attempts.get(message.key)
          if (attempt?.probe === true) this.#use.probed(attempt.agent, message.utilization)
        }
      })
      return piscina
    }
  }

  get #piscina(): Piscina<WorkerTask, WorkerResult> {
    return this.#started.piscina
  }

  get #shared(): SharedThreads {
    return this.#started.shared
  }

  get #started(): { readonly piscina: Piscina<WorkerTask, WorkerResult>; readonly shared: SharedThreads } {
    if (this.#threads !== undefined) return this.#threads
    const piscina = this.#startThreads()
    this.#threads = { piscina, shared: new SharedThreads(piscina, this.#retiring) }
    return this.#threads
  }

  /**
   * Starts one attempt of a module agent. `abort()` on the returned handle tells an agent
   * that watches `ctx.signal` first and gives it `request.graceMs` to finish; then its thread is
   * terminated (piscina replaces it). The result promise never rejects.
   */
  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const agent = request.agent
    if (agent.kind !== 'module') {
      const message = `The worker pool runs module agents only; agent "${agent.name}" is of kind "${agent.kind}"`
      return { result: Promise.resolve({ ok: false, error: { code: 'ERR_AGENT_UNAVAILABLE', message, retryable: false } }), abort: () => {} }
    }
    const id = ++this.#nextAttempt
    const task: WorkerTask = {
      id,
      moduleUrl: agent.moduleUrl,
      input: request.input,
      runId: request.runId,
      taskId: request.taskId,
      attempt: request.attempt,
      dependencies: request.dependencies,
      model: request.model,
      ...(request.workspace !== undefined ? { workspace: request.workspace, port: request.port } : {}),
      ...(request.repair !== undefined ? { repair: repairContext(request.repair) } : {}),
    }
    const attempt = new PoolAttempt(id, listener, request.graceMs)
    const attempts = this.#attempts
    attempt.agent = agent.name
    attempt.runId = request.runId
    attempt.taskId = request.taskId
    attempt.cwd = request.workspace ?? request.baseDir
    attempt.owner = { runDir: request.runDir, taskId: request.taskId, attempt: request.attempt }
    attempts.set(id, attempt)
    attempt.result = this.#run(task, attempt, this.#routeOf(agent.name)).then(
      (result) => {
        attempts.delete(id)
        attempt.settle()
        this.#use.ended(attempt.agent, attempt.probe, result.resources)
        this.#shared.flush()
        return result
      },
      (error: Error): WorkerResult => {
        attempts.delete(id)
        attempt.settle()
        this.#use.ended(attempt.agent, attempt.probe, undefined)
        this.#shared.flush()
        return { ok: false, error: classifyWorkerError(error, task) }
      },
    )
    return attempt
  }

  #routeOf(agent: string): ThreadRoute {
    const told = this.#shares?.(agent)
    if (told !== undefined) return told ? 'share' : 'alone'
    return this.#use.route(agent)
  }

  /** Runs `task` where `route` says: on a shared thread, alone (with a probe), or once its agent's probe has answered. */
  #run(task: WorkerTask, attempt: PoolAttempt, route: ThreadRoute): Promise<WorkerResult> {
    switch (route) {
      case 'share':
        return this.#shared.run(task, attempt)
      case 'alone':
        return this.#piscina.run(task, { signal: attempt })
      case 'probe':
        attempt.probe = true
        return this.#piscina.run({ ...task, probe: true }, { signal: attempt })
      case 'hold':
        return new Promise<WorkerResult>((resolve, reject) => {
          // Aborted while held: it never ran, and settles as aborted (see PoolAttempt.abort).
          attempt.abandon = () => reject(Object.assign(new Error(`Attempt ${task.attempt} of task "${task.taskId}" was aborted before it started`), { name: 'AbortError' }))
          this.#use.hold(attempt.agent, (decided) => {
            if (attempt.aborted) return
            if (this.#closingForced) return attempt.abandon?.()
            attempt.abandon = undefined
            this.#run(task, attempt, decided).then(resolve, reject)
          })
        })
    }
  }

  /** Threads started (busy or idle). */
  get threads(): number {
    return this.#threads?.piscina.threads.length ?? 0
  }

  /**
   * Readies the pool for a run, before its first task starts: checks that every module
   * agent of `plan` loads (rejects with `ERR_AGENT_LOAD` otherwise, see {@link AgentChecker})
   * and starts the threads the run can use at once (`parallelism`, at most the module tasks),
   * so that none starts cold in the middle of the DAG. Resolves at once for a plan without
   * module agents.
   */
  async prepare(plan: CompiledPlan, parallelism: number): Promise<void> {
    const agents = new Map<string, ModuleAgentSpec>()
    let moduleTasks = 0
    for (const task of plan.tasks) {
      const agent = task.agentSpec
      if (agent.kind !== 'module') continue
      moduleTasks++
      if (!agents.has(agent.name)) agents.set(agent.name, agent)
    }
    if (moduleTasks === 0) return
    // Threads start now, before the first dispatch, but the run need not wait for them: its first
    // tasks queue for the threads already booting, none waits for a thread started mid-run.
    // Attempts that wait share few threads, CPU-bound ones use no more than the cores at once, and
    // agents not known yet start on at most a thread per core until their probes answer.
    this.#warm(Math.min(parallelism, moduleTasks, availableParallelism()))
    await this.#checker.check([...agents.values()])
  }

  /** Runs `checkAgents` on a free pool thread (no extra thread to start), else on a spare one. */
  #checkIn(urls: readonly string[], signal: AbortSignal): Promise<AgentLoadProblem[]> {
    if (this.slots.inFlight < this.slots.capacity) return this.#piscina.run(urls as unknown as WorkerTask, { name: CHECK_AGENTS_EXPORT, signal }) as unknown as Promise<AgentLoadProblem[]>
    const resourceLimits = this.#resourceLimits
    this.#spareChecker ??= new (piscinaClass())<readonly string[], AgentLoadProblem[]>({
      filename: this.#filename,
      name: CHECK_AGENTS_EXPORT,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 1_000,
      atomics: 'disabled',
      execArgv: [...threadExecArgv()],
      maxQueue: Infinity,
      ...(resourceLimits === undefined ? {} : { resourceLimits }),
    })
    return this.#spareChecker.run(urls, { signal })
  }

  /**
   * Makes `threads` threads free for new work. piscina starts a thread for a task that finds
   * none free, so `n` no-op tasks at once leave at least `n` threads up. Only as many as
   * there are free or startable threads: a warm-up never queues behind a busy thread.
   */
  #warm(threads: number): void {
    const perThread = this.#piscina.options.concurrentTasksPerWorker
    const free = Math.floor((this.slots.capacity - this.slots.inFlight) / perThread)
    const n = Math.min(threads, free)
    if (n <= 0) return
    for (let i = 0; i < n; i++) this.#piscina.run(null as unknown as WorkerTask, { name: WARM_EXPORT }).catch(() => undefined)
  }

  /** Waits for queued work to finish (or, with `force`, terminates it) and stops the threads. */
  async close(force = false): Promise<void> {
    // Attempts held for a probe's answer run now, or, forced, end without running.
    this.#closingForced = force
    this.#use.close()
    await this.#spareChecker?.close({ force: true })
    const threads = this.#threads
    if (threads !== undefined) {
      // piscina's close waits for running tasks, even forced: abandoned ones may never end.
      if (threads.shared.abandoned > 0) await Promise.all(threads.piscina.threads.map((thread) => thread.terminate()))
      await threads.piscina.close({ force })
    }
    for (const port of this.#ports) port.close()
    this.#ports.clear()
  }

  #exposeHost(port: MessagePort): void {
    const attempts = this.#attempts
    const host: HostApi = {
      progress(key, fraction, message) {
        attempts.get(key)?.listener.onProgress(fraction, message)
      },
      log(key, message) {
        attempts.get(key)?.listener.onLog(message)
      },
      watchAbort(key) {
        const attempt = attempts.get(key)
        if (attempt) attempt.abortPort = port
      },
      async acquire(key, name) {
        const attempt = attempts.get(key)
        if (attempt === undefined) throw new Error(`ctx.acquire(${JSON.stringify(name)}): the attempt has ended`)
        attempt.ended ??= new AbortController()
        const release = await attempt.listener.onAcquire(String(name), attempt.ended.signal)
        // The attempt may have ended while the unit was granted.
        if (attempt.ended.signal.aborted) {
          release()
          throw new Error(`ctx.acquire(${JSON.stringify(name)}): the attempt has ended`)
        }
        const lease = ++nextLease
        ;(attempt.leases ??= new Map()).set(lease, release)
        return lease
      },
      releaseLease(key, lease) {
        const attempt = attempts.get(key)
        const release = attempt?.leases?.get(lease)
        if (release === undefined) return
        attempt!.leases!.delete(lease)
        release()
      },
      usage(key, report) {
        attempts.get(key)?.listener.onUsage(report)
      },
      claim(key, path) {
        // An attempt that has ended holds nothing and may claim nothing.
        return attempts.get(key)?.listener.onClaim(String(path)) ?? { granted: false }
      },
      release(key, path) {
        attempts.get(key)?.listener.onRelease(String(path))
      },
      async spawn(key, tasks, wait) {
        const attempt = attempts.get(key)
        if (attempt === undefined) return { ok: false, error: { code: 'ERR_ARGUMENT_INVALID', message: 'ctx.spawn: the attempt has ended' } }
        return attempt.listener.onSpawn(tasks, { wait: wait === true })
      },
      exec(key, command, args, options) {
        const attempt = attempts.get(key)
        if (attempt === undefined) return Promise.reject(new Error('ctx.exec: the attempt has ended'))
        return hostExec(command, args, options, { cwd: attempt.cwd, graceMs: attempt.graceMs, owner: attempt.owner }, (attempt.groups ??= new Set()))
      },
      scratchpadRead(key) {
        const attempt = attempts.get(key)
        return attempt?.listener.scratchpad?.()?.read() ?? []
      },
      async scratchpadAppend(key, text) {
        const attempt = attempts.get(key)
        if (attempt === undefined) throw new Error('ctx.scratchpad.append: the attempt has ended')
        const pad = attempt.listener.scratchpad?.()
        if (pad === undefined) throw new Error(`ctx.scratchpad.append: run "${attempt.runId}" has no scratchpad on this runtime`)
        return pad.append(attempt.taskId, String(text))
      },
    }
    comlink().expose(host, port as unknown as Comlink.Endpoint)
    // One port per worker thread: it closes when its thread ends.
    this.#ports.add(port)
    port.once('close', () => this.#ports.delete(port))
    port.unref()
  }
}

let nextLease = 0

/** `ctx.repair`: what a module agent is told on a repair (the CLI prompt and session stay on this side). */
function repairContext(repair: AttemptRepair): RepairContext {
  return { number: repair.number, reason: repair.reason, detail: repair.detail }
}
