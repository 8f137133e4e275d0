/** A run as the dispatcher sees it. */
export interface Dispatchable {
  /** Starts one ready task if its own limits allow; true when it did. */
  tryStartOne(): boolean
}

/**
 * Shares one pool's slots among the runs of a runtime. Runs take turns, one task each, so
 * a small run is never starved behind a big one. Pumping is deferred to a microtask and
 * never re-entrant: callers only `request()` it.
 */
export class Dispatcher {
  readonly #runs: Dispatchable[] = []
  #cursor = 0
  #inFlight = 0
  #requested = false
  #capacity: number
  /** Extra bound on attempts in flight, e.g. from the resource governor. */
  #admissionLimit: () => number = () => Infinity

  constructor(capacity: number) {
    this.#capacity = capacity
  }

  get inFlight(): number {
    return this.#inFlight
  }

  get capacity(): number {
    return this.#capacity
  }

  /** Installs a dynamic bound on attempts in flight (the governor's). */
  setAdmissionLimit(limit: () => number): void {
    this.#admissionLimit = limit
  }

  add(run: Dispatchable): void {
    this.#runs.push(run)
    this.request()
  }

  remove(run: Dispatchable): void {
    const at = this.#runs.indexOf(run)
    if (at === -1) return
    this.#runs.splice(at, 1)
    if (this.#cursor > at) this.#cursor--
    if (this.#cursor >= this.#runs.length) this.#cursor = 0
  }

  /**
   * An attempt's slot is free again. With `pumpNow`, the next task starts before the caller
   * goes on (the caller knows its completion cannot change which task should go next), so
   * the worker does not sit idle while the completion is processed.
   */
  release(pumpNow = false): void {
    this.#inFlight--
    if (pumpNow) this.pump()
    else this.request()
  }

  request(): void {
    if (this.#requested) return
    this.#requested = true
    queueMicrotask(() => {
      this.#requested = false
      this.pump()
    })
  }

  /** Starts as many tasks as slots and admission allow, round-robin over runs. */
  pump(): void {
    const limit = Math.min(this.#capacity, Math.max(1, this.#admissionLimit()))
    let idle = 0
    while (this.#inFlight < limit && this.#runs.length > 0 && idle < this.#runs.length) {
      if (this.#cursor >= this.#runs.length) this.#cursor = 0
      const run = this.#runs[this.#cursor]!
      this.#cursor = (this.#cursor + 1) % this.#runs.length
      if (run.tryStartOne()) {
        this.#inFlight++
        idle = 0
      } else {
        idle++
      }
    }
  }
}
