import type { CompiledTask } from '../plan/plan.ts'
import type { Gate } from './gate.ts'

/** The thread-slot gate as this wrapper needs it (the pool's ThreadSlots). */
export interface ThreadSlotGate extends Gate {
  /** Slots for module-agent attempts. */
  readonly capacity: number
  /** Attempts waiting in `ctx.spawn` that may give their slot back (the pool starts a thread for each). */
  readonly parkCapacity: number
}

/**
 * The thread slots, with the limit on module agents waiting in `ctx.spawn(…, { wait: true })`
 * made explicit. A waiting parent gives its slot back while the pool has threads to spare
 * for that (`parkCapacity`); past that it keeps its slot while it waits. If every slot were
 * held by such parents, the tasks they wait for could never get a thread: a silent deadlock
 * (regression: a 511-task spawn tree sat at RUNNING 128 / QUEUED 129 until its timeout).
 * So a wait that would leave no slot to anything but waiting parents is refused at spawn
 * time ({@link checkWait}: ERR_SPAWN_WAIT_LIMIT naming the numbers and what to change).
 */
export class WaitingThreads implements Gate {
  /** A refusal is the agent's: no thread slot (see ThreadSlots). */
  readonly refusesByAgent = true
  readonly #slots: ThreadSlotGate
  /** Waiting parents that gave their slot back. */
  #parked = 0
  /** Waiting parents that kept their slot (no thread to spare), by run and task. */
  readonly #holding = new Map<string, string>()

  constructor(slots: ThreadSlotGate) {
    this.#slots = slots
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    return this.#slots.tryAcquire(runId, task)
  }

  release(runId: string, task: CompiledTask): void {
    this.#slots.release(runId, task)
  }

  /** A module parent waits: it parks off its slot if the pool has a thread to spare, else it holds it (counted). */
  suspend(runId: string, task: CompiledTask): boolean {
    if (task.agentSpec.kind !== 'module') return false
    if (this.#slots.suspend?.(runId, task) === true) {
      this.#parked++
      return true
    }
    this.#holding.set(keyOf(runId, task), task.id)
    return true
  }

  resume(runId: string, task: CompiledTask): boolean {
    if (this.#holding.delete(keyOf(runId, task))) return true
    if (!this.#slots.resume!(runId, task)) return false
    this.#parked--
    return true
  }

  /** The parent's attempt ended while it waited: the slot it kept, or its parked place, is free. */
  releaseSuspended(runId: string, task: CompiledTask): void {
    if (this.#holding.delete(keyOf(runId, task))) return this.#slots.release(runId, task)
    this.#slots.releaseSuspended!(runId, task)
    this.#parked--
  }

  /**
   * Why `task` may not wait for tasks it spawns, or undefined when it may: a module agent that
   * cannot give its slot back, when the parents already holding theirs plus it would hold
   * every slot.
   */
  checkWait(runId: string, task: CompiledTask): string | undefined {
    if (task.agentSpec.kind !== 'module' || this.#holding.has(keyOf(runId, task))) return undefined
    const { capacity, parkCapacity } = this.#slots
    if (this.#parked < parkCapacity || this.#holding.size + 1 < capacity) return undefined
    const held = [...this.#holding.values()]
    const named = `${held.slice(0, 5).map((id) => `"${id}"`).join(', ')}${held.length > 5 ? `, … (${held.length} in all)` : ''}`
    return (
      `No progress possible: task "${task.id}" would wait in ctx.spawn(…, { wait: true }) ` +
      `holding the last of ${capacity} thread slots, ` +
      `the others held by tasks that wait for the tasks they spawned (${named}) and ${this.#parked} more waiting off their thread ` +
      `(the most the pool allows): the tasks waited for could never start. ` +
      `Raise pool.maxThreads, spawn without { wait: true }, or wait in fewer levels`
    )
  }
}

function keyOf(runId: string, task: CompiledTask): string {
  return `${runId}\u0000${task.index}`
}
