import type { Gate } from '../../admission/gate.ts'
import type { CompiledTask } from '../../plan/plan.ts'

/**
 * The admission gate for worker threads: a module agent's task starts only when a thread
 * slot is free; tasks of other kinds (process, CLI and LLM agents) pass without one. So
 * threads bound module agents only, and the dispatcher's capacity is not the thread count.
 */
export class ThreadSlots implements Gate {
  readonly capacity: number
  #inFlight = 0

  constructor(capacity: number) {
    this.capacity = capacity
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
