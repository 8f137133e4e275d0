import type { MessagePort } from 'node:worker_threads'
import * as Comlink from 'comlink'
import { Piscina } from 'piscina'
import { workerFile } from './worker-file.ts'
import { ABORT_MESSAGE, CTX_PORT_MESSAGE, type AttemptKey, type HostApi, type WorkerError, type WorkerResult, type WorkerTask } from './protocol.ts'

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

/** Receives what an attempt reports through `ctx`. */
export interface AttemptListener {
  onProgress(fraction: number, message: string | undefined): void
  onLog(message: string): void
}

interface Attempt {
  readonly listener: AttemptListener
  /** The ctx port of the worker running it, once the agent watches `ctx.signal`. */
  abortPort: MessagePort | undefined
}


/**
 * The worker threads of one runtime: a piscina pool plus the comlink host that agents'
 * `ctx` calls reach. Never rejects a run: every outcome, including a dead worker, comes
 * back as a {@link WorkerResult}.
 */
export class WorkerPool {
  readonly #piscina: Piscina<WorkerTask, WorkerResult>
  readonly #attempts = new Map<string, Attempt>()
  readonly #ports = new Set<MessagePort>()
  readonly capacity: number

  constructor(options: PoolOptions) {
    this.capacity = options.maxThreads * options.concurrentTasksPerWorker
    this.#piscina = new Piscina<WorkerTask, WorkerResult>({
      filename: workerFile(),
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

  get threads(): number {
    return this.#piscina.threads.length
  }

  /**
   * Runs one attempt. When `signal` aborts, an agent that watches `ctx.signal` is told first
   * and given `graceMs` to finish; then the attempt's thread is terminated (and replaced).
   */
  async run(task: WorkerTask, listener: AttemptListener, signal: AbortSignal, graceMs: number): Promise<WorkerResult> {
    const key = keyOf(task)
    const attempt: Attempt = { listener, abortPort: undefined }
    this.#attempts.set(key, attempt)
    const hard = new AbortController()
    let graceTimer: NodeJS.Timeout | undefined
    const onAbort = () => {
      if (attempt.abortPort === undefined || graceMs === 0) return hard.abort()
      attempt.abortPort.postMessage({ type: ABORT_MESSAGE, key: { runId: task.runId, taskId: task.taskId, attempt: task.attempt } })
      graceTimer = setTimeout(() => hard.abort(), graceMs)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    try {
      return await this.#piscina.run(task, { signal: hard.signal })
    } catch (error) {
      return { ok: false, error: classifyWorkerError(error as Error, task) }
    } finally {
      signal.removeEventListener('abort', onAbort)
      clearTimeout(graceTimer)
      this.#attempts.delete(key)
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
    }
    Comlink.expose(host, port as unknown as Comlink.Endpoint)
    // One port per worker thread: it closes when its thread ends.
    this.#ports.add(port)
    port.once('close', () => this.#ports.delete(port))
    port.unref()
  }
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
  return { code: 'ERR_TASK_FAILED', message: `Task "${task.taskId}" crashed its worker thread with an uncaught exception: ${error.message}`, cause }
}
