import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor } from './executor.ts'

/**
 * An executor whose implementation (and the libraries it needs: execa, bullmq, ioredis …) is
 * loaded on its first attempt, so `import('troupe')` and a plan of module agents never pay
 * for them. `load` runs once; if it fails, every attempt fails with ERR_AGENT_UNAVAILABLE
 * (not retryable) naming the executor and the cause.
 */
export class LazyExecutor implements Executor {
  readonly name: string
  readonly #load: () => Promise<Executor>
  #loaded: Promise<Executor> | undefined

  constructor(name: string, load: () => Promise<Executor>) {
    this.name = name
    this.#load = load
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    let inner: AttemptHandle | undefined
    let aborted = false
    const result = (this.#loaded ??= this.#load()).then(
      (executor): Promise<AttemptResult> => {
        inner = executor.start(request, listener)
        if (aborted) inner.abort()
        return inner.result
      },
      (error: unknown): AttemptResult => {
        const cause = error instanceof Error ? error.message : String(error)
        const message = `Cannot load the ${this.name} executor for task "${request.taskId}": ${cause}`
        return { ok: false, error: { code: 'ERR_AGENT_UNAVAILABLE', message, retryable: false } }
      },
    )
    return {
      result,
      abort: () => {
        aborted = true
        inner?.abort()
      },
    }
  }

  async close(force?: boolean): Promise<void> {
    if (this.#loaded === undefined) return
    const executor = await this.#loaded.catch(() => undefined)
    await executor?.close(force)
  }
}
