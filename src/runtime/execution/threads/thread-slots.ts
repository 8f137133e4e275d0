import type { Gate } from '../../admission/gate.ts'
import type { CompiledTask } from '../../plan/plan.ts'

/**
 * The admission gate for worker threads: a module agent's task starts only when a thread
 * slot is free; tasks of other kinds (process, CLI and LLM agents) pass without one. So
 * threads bound module agents only, and the dispatcher's capacity is not the thread count.
 */
export class ThreadSlots implements Gate {
  /** A refusal is the agent's: no slot for any module agent. */
  readonly refusesByAgent = true
  readonly capacity: number
  /** Threads beyond `capacity` the pool may start for attempts parked in {@link suspend}. */
  readonly parkCapacity: number
  #inFlight = 0
  #parked = 0

  constructor(capacity: number, parkCapacity = 0) {
    this.capacity = capacity
    this.parkCapacity = parkCapacity
  }

  /**
   * A waiting module agent still occupies its thread, but not its slot: the pool may start
   * one more thread (up to `parkCapacity` in all) so that the tasks it waits for can run.
   */
  suspend(_runId: string, task: CompiledTask): boolean {
    if (task.agentSpec.kind !== 'module' || this.#parked >= this.parkCapacity) return false
    this.#parked++
    this.#inFlight--
    return true
  }

  resume(): boolean {
    if (this.#inFlight >= this.capacity) return false
    this.#parked--
    this.#inFlight++
    return true
  }

  /** The parked attempt ended: its place among the parked is free (its slot was given back when it parked). */
  releaseSuspended(): void {
    this.#parked--
  }

  /** Module-agent attempts holding a slot. */
  get inFlight(): number {
    return this.#inFlight
  }

  tryAcquire(_runId: string, task: CompiledTask): boolean {
    if (task.agentSpec.kind !== 'module') return true
    if (this.#inFlight >= this.capacity) return false
    this.#inFlight++
    return true
  }

  release(_runId: string, task: CompiledTask): void {
    if (task.agentSpec.kind === 'module') this.#inFlight--
  }
}
