import type { CompiledTask } from '../plan/plan.ts'
import type { Gate } from './gate.ts'

/** Where a task stands with one gate. */
export type GateStatus = 'held' | 'suspended' | 'released'

/** One line of a task's ledger: a gate, what the task has of it, and why it changed last. */
export interface GateEntry {
  readonly gate: Gate
  status: GateStatus
  reason: string
}

/**
 * One ledger per task of a run: which gates it holds, which it gave back while it waits for
 * tasks it spawned, which it released, each with the reason. Admission, waiting, resuming and
 * the end of an attempt all go through it, so a gate is released exactly once, and what was
 * suspended is released as such (`Gate.releaseSuspended`).
 * Gates are passed in their order (see the runtime): the ledger
 * takes them in that order and rolls back in reverse (Gate.undo, waking nobody).
 */
export class GateLedger {
  readonly #runId: string
  readonly #gates: readonly Gate[]
  /** Per task index, while it holds anything. */
  readonly #entries = new Map<number, GateEntry[]>()
  /** Whether the last refusal of {@link admit} came from a gate that refuses by agent (Gate.refusesByAgent). */
  lastRefusalByAgent = false

  constructor(runId: string, gates: readonly Gate[]) {
    this.#runId = runId
    this.#gates = gates
  }

  /** Tasks holding or having suspended some gate. */
  get size(): number {
    return this.#entries.size
  }

  /** The task's ledger (empty when it holds nothing). */
  entriesOf(task: CompiledTask): readonly GateEntry[] {
    return this.#entries.get(task.index) ?? []
  }

  /** Takes every gate for `task`, in order; all or none (a refusal rolls back the earlier ones). */
  admit(task: CompiledTask): boolean {
    const gates = this.#gates
    for (let g = 0; g < gates.length; g++) {
      if (gates[g]!.tryAcquire(this.#runId, task)) continue
      this.lastRefusalByAgent = gates[g]!.refusesByAgent === true
      for (let back = g - 1; back >= 0; back--) {
        const gate = gates[back]!
        if (gate.undo) gate.undo(this.#runId, task)
        else gate.release(this.#runId, task)
      }
      return false
    }
    if (gates.length > 0) this.#entries.set(task.index, gates.map((gate) => ({ gate, status: 'held', reason: 'admitted' })))
    return true
  }

  /** The task waits (for tasks it spawned): each gate that lets it gives back what a waiting task does not use. */
  suspend(task: CompiledTask, reason: string): void {
    for (const entry of this.#entries.get(task.index) ?? []) {
      if (entry.status !== 'held' || entry.gate.suspend?.(this.#runId, task) !== true) continue
      entry.status = 'suspended'
      entry.reason = reason
    }
  }

  /** The waiting is over: takes back every suspended gate, all or none (false: not free yet, nothing taken). */
  resume(task: CompiledTask, reason: string): boolean {
    const suspended = (this.#entries.get(task.index) ?? []).filter((entry) => entry.status === 'suspended')
    for (let at = 0; at < suspended.length; at++) {
      if (suspended[at]!.gate.resume!(this.#runId, task)) continue
      for (let back = 0; back < at; back++) suspended[back]!.gate.suspend!(this.#runId, task)
      return false
    }
    for (const entry of suspended) {
      entry.status = 'held'
      entry.reason = reason
    }
    return true
  }

  /** The attempt is over: every gate is released once (a suspended one through `releaseSuspended`). */
  release(task: CompiledTask, reason: string): void {
    const entries = this.#entries.get(task.index)
    if (entries === undefined) return
    this.#entries.delete(task.index)
    for (const entry of entries) {
      if (entry.status === 'suspended') entry.gate.releaseSuspended!(this.#runId, task)
      else if (entry.status === 'held') entry.gate.release(this.#runId, task)
      entry.status = 'released'
      entry.reason = reason
    }
  }
}
