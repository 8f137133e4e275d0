import type { MessagePort } from 'node:worker_threads'
import * as Comlink from 'comlink'
import { Piscina } from 'piscina'
import { threadEntryFile } from '../../core/worker-file.ts'
import { ABORT_MESSAGE, CTX_PORT_MESSAGE, type AttemptKey, type ClaimResult, type HostApi, type WorkerError, type WorkerResult, type WorkerTask } from './protocol.ts'
import type { AttemptHandle, AttemptListener, AttemptRequest, Executor } from '../executor.ts'

export interface PoolOptions {
  readonly minThreads: number
  readonly maxThreads: number
  readonly concurrentTasksPerWorker: number
  readonly idleTimeoutMs: number
  /** Heap limit per worker thread (V8 old generation); `null` for none. */
  readonly perAgentMb: number | null
  /** Called for pool-level errors not tied to a task, so they never crash the process. */
  readonly onError: (error: Error) => void
}

/**
 * The abort signal piscina gets for an attempt. piscina accepts any object shaped like an
 * AbortSignal's listener API; this one holds its single listener in a field and costs a
 * fraction of an AbortController, which matters at thousands of tasks per second.
 */
class HardAbort {
  aborted = false
  reason: unknown = undefined
  #listener: (() => void) | undefined

  addEventListener(_event: 'abort', listener: () => void): void {
    this.#listener = listener
  }

  removeEventListener(): void {
    this.#listener = undefined
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    this.#listener?.()
  }
}

interface Attempt {
  readonly listener: AttemptListener
  /** The ctx port of the worker running it, once the agent watches `ctx.signal`. */
  abortPort: MessagePort | undefined
  /** Limit units held through `ctx.acquire`, by lease id; created on first use. */
  leases: Map<number, () => void> | undefined
  /** Aborted when the attempt ends, so `ctx.acquire` calls still waiting give up. */
  ended: AbortController | undefined
}


/**
 * The worker threads of one runtime: a piscina pool plus the comlink host that agents'
 * `ctx` calls reach. Never rejects a run: every outcome, including a dead worker, comes
 * back as a {@link WorkerResult}.
 */
export class WorkerPool implements Executor {
  readonly name = 'local'
  readonly #piscina: Piscina<WorkerTask, WorkerResult>
  readonly #attempts = new Map<string, Attempt>()
  readonly #ports = new Set<MessagePort>()
  readonly capacity: number

  constructor(options: PoolOptions) {
    this.capacity = options.maxThreads * options.concurrentTasksPerWorker
    this.#piscina = new Piscina<WorkerTask, WorkerResult>({
      filename: threadEntryFile(import.meta.url, 'worker-entry', ['worker-entry.ts', 'protocol.ts']),
      minThreads: options.minThreads,
      maxThreads: options.maxThreads,
      concurrentTasksPerWorker: options.concurrentTasksPerWorker,
      idleTimeout: options.idleTimeoutMs,
      // 'sync' (the default) blocks a worker's event loop between tasks, freezing its timers.
      atomics: 'disabled',
      // The scheduler never hands piscina more than it can run; no queue limit here.
      maxQueue: Infinity,
      ...(options.perAgentMb === null ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.perAgentMb } }),
    })
    // Without an 'error' listener a worker that fails outside a task crashes the process.
    this.#piscina.on('error', (error: Error) => options.onError(error))
    this.#piscina.on('message', (message: { type?: unknown; port?: MessagePort }) => {
      if (message?.type === CTX_PORT_MESSAGE && message.port) this.#exposeHost(message.port)
    })
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
    const task: WorkerTask = {
      moduleUrl: agent.moduleUrl,
      input: request.input,
      runId: request.runId,
      taskId: request.taskId,
      attempt: request.attempt,
      dependencies: request.dependencies,
      model: request.model,
      ...(request.workspace !== undefined ? { workspace: request.workspace, port: request.port } : {}),
    }
    const graceMs = request.graceMs
    const key = keyOf(task)
    const attempt: Attempt = { listener, abortPort: undefined, leases: undefined, ended: undefined }
    this.#attempts.set(key, attempt)
    const hard = new HardAbort()
    let graceTimer: NodeJS.Timeout | undefined
    const result = this.#piscina
      .run(task, { signal: hard })
      .catch((error: Error): WorkerResult => ({ ok: false, error: classifyWorkerError(error, task) }))
      .finally(() => {
        clearTimeout(graceTimer)
        this.#attempts.delete(key)
        endLeases(attempt)
      })
    return {
      result,
      abort: () => {
        if (hard.aborted || graceTimer !== undefined) return
        if (attempt.abortPort === undefined || graceMs === 0) return hard.abort()
        attempt.abortPort.postMessage({ type: ABORT_MESSAGE, key: { runId: task.runId, taskId: task.taskId, attempt: task.attempt } })
        graceTimer = setTimeout(() => hard.abort(), graceMs)
      },
    }
  }

  /** Waits for queued work to finish (or, with `force`, terminates it) and stops the threads. */
  async close(force = false): Promise<void> {
    await this.#piscina.close({ force })
    for (const port of this.#ports) port.close()
    this.#ports.clear()
  }

  #exposeHost(port: MessagePort): void {
    const attempts = this.#attempts
    const host: HostApi = {
      progress(key, fraction, message) {
        attempts.get(keyOf(key))?.listener.onProgress(fraction, message)
      },
      log(key, message) {
        attempts.get(keyOf(key))?.listener.onLog(message)
      },
      watchAbort(key) {
        const attempt = attempts.get(keyOf(key))
        if (attempt) attempt.abortPort = port
      },
      async acquire(key, name) {
        const attempt = attempts.get(keyOf(key))
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
        const attempt = attempts.get(keyOf(key))
        const release = attempt?.leases?.get(lease)
        if (release === undefined) return
        attempt!.leases!.delete(lease)
        release()
      },
      usage(key, report) {
        attempts.get(keyOf(key))?.listener.onUsage(report)
      },
      claim(key, path) {
        // An attempt that has ended holds nothing and may claim nothing.
        return attempts.get(keyOf(key))?.listener.onClaim(String(path)) ?? { granted: false }
      },
      release(key, path) {
        attempts.get(keyOf(key))?.listener.onRelease(String(path))
      },
    }
    Comlink.expose(host, port as unknown as Comlink.Endpoint)
    // One port per worker thread: it closes when its thread ends.
    this.#ports.add(port)
    port.once('close', () => this.#ports.delete(port))
    port.unref()
  }
}

let nextLease = 0

/** Gives back what an ended attempt still holds and stops its waiting `ctx.acquire` calls. */
function endLeases(attempt: Attempt): void {
  attempt.ended?.abort(new Error('the attempt has ended'))
  if (attempt.leases === undefined) return
  for (const release of attempt.leases.values()) release()
  attempt.leases.clear()
}

function keyOf(key: AttemptKey): string {
  return `${key.runId}\u0000${key.taskId}\u0000${key.attempt}`
}

function classifyWorkerError(error: Error & { code?: string }, task: WorkerTask): WorkerError {
  const cause = { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) }
  if (error.name === 'AbortError') {
    return { code: 'ERR_CANCELLED', message: `Attempt ${task.attempt} of task "${task.taskId}" was aborted`, cause }
  }
  if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return { code: 'ERR_WORKER_OOM', message: `Task "${task.taskId}" ran out of memory in its worker thread (heap limit: governor.memory.perAgentMb); the worker was replaced`, cause }
  }
  const exit = /worker exited with code: (-?\d+)/.exec(error.message)
  if (exit) {
    return { code: 'ERR_WORKER_EXIT', message: `The worker thread running task "${task.taskId}" exited with code ${exit[1]} (did the agent call process.exit?); the worker was replaced`, cause }
  }
  if (error.name === 'DataCloneError') {
    return { code: 'ERR_TASK_FAILED', message: `Input of task "${task.taskId}" cannot be structured-cloned: ${error.message}`, cause, retryable: false }
  }
  return { code: 'ERR_WORKER_CRASH', message: `Task "${task.taskId}" crashed its worker thread with an uncaught exception: ${error.message}; the worker was replaced`, cause }
}
