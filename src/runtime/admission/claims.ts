import type { CompiledTask } from '../plan/plan.ts'
import { firstOverlap } from '../plan/claim-patterns.ts'
import type { ClaimResult, Gate } from './gate.ts'

export type { ClaimResult }

interface Holder {
  readonly runId: string
  readonly taskId: string
  /** Claims held, static (from the plan) and dynamic (`ctx.claim`), with multiplicity. */
  readonly claims: string[]
}

/**
 * The claims held by the running tasks of every run on a runtime. As a {@link Gate} it
 * keeps a task QUEUED while another running task holds an overlapping claim; the refused
 * task holds no slot meanwhile, so waiting on a claim never blocks anything else.
 * `ctx.claim` never waits: it answers at once and the agent decides what to do.
 * Everything a task holds is released when its attempt's slot is freed, however it ended.
 */
export class ClaimRegistry implements Gate {
  readonly #holders = new Map<string, Holder>()

  /** Tasks holding claims right now. */
  get size(): number {
    return this.#holders.size
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    if (task.claims.length === 0) return true
    if (this.#conflict(runId, task.id, task.claims) !== undefined) return false
    this.#holderFor(runId, task.id).claims.push(...task.claims)
    return true
  }

  release(runId: string, task: CompiledTask): void {
    this.#holders.delete(keyOf(runId, task.id))
  }

  /** `ctx.claim(path)`: takes `path` for the task unless another task holds an overlapping claim. */
  claim(runId: string, taskId: string, path: string): ClaimResult {
    const conflict = this.#conflict(runId, taskId, [path])
    if (conflict !== undefined) return { granted: false, holder: conflict.taskId, holderRunId: conflict.runId }
    this.#holderFor(runId, taskId).claims.push(path)
    return { granted: true }
  }

  /** `ctx.release(path)`: gives back one hold on `path` (no-op when not held). Returns whether it was held. */
  unclaim(runId: string, taskId: string, path: string): boolean {
    const key = keyOf(runId, taskId)
    const holder = this.#holders.get(key)
    const at = holder?.claims.indexOf(path) ?? -1
    if (at === -1) return false
    holder!.claims.splice(at, 1)
    if (holder!.claims.length === 0) this.#holders.delete(key)
    return true
  }

  #conflict(runId: string, taskId: string, claims: readonly string[]): Holder | undefined {
    const self = keyOf(runId, taskId)
    for (const [key, holder] of this.#holders) {
      if (key !== self && firstOverlap(claims, holder.claims) !== undefined) return holder
    }
    return undefined
  }

  #holderFor(runId: string, taskId: string): Holder {
    const key = keyOf(runId, taskId)
    let holder = this.#holders.get(key)
    if (holder === undefined) this.#holders.set(key, (holder = { runId, taskId, claims: [] }))
    return holder
  }
}

function keyOf(runId: string, taskId: string): string {
  return `${runId}\u0000${taskId}`
}
