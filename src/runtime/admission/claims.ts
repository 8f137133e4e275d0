import { TroupeError } from '../core/errors.ts'
import type { CompiledPlan, CompiledTask } from '../plan/plan.ts'
import { normaliseClaim, type NormalisedClaim } from './claim-paths.ts'
import { firstOverlap } from '../plan/claim-patterns.ts'
import type { ClaimResult, Gate } from './gate.ts'

export type { ClaimResult }

interface Holder {
  readonly runId: string
  readonly taskId: string
  /** Claims held, static (from the plan) and dynamic (`ctx.claim`), with multiplicity. */
  readonly claims: string[]
  /** The task waits for tasks it spawned: its claims do not hold those back (nor theirs). */
  waiting: boolean
}

/**
 * The claims held by the running tasks of every run on a runtime. As a {@link Gate} it
 * keeps a task QUEUED while another running task holds an overlapping claim; the refused
 * task holds no slot meanwhile, so waiting on a claim never blocks anything else.
 * `ctx.claim` never waits: it answers at once and the agent decides what to do.
 * Everything a task holds is released when its attempt's slot is freed, however it ended.
 * A task waiting for tasks it spawned lends its claims to them: they, and the tasks they
 * spawn, may take overlapping claims (the parent does not work meanwhile); others may not.
 */
export class ClaimRegistry implements Gate {
  readonly #holders = new Map<string, Holder>()
  /** Running tasks added by another task: their parent's key, for the lending above. */
  readonly #parents = new Map<string, string>()
  /** Each run's root (its plan's directory): claims are compared as real paths relative to it. */
  readonly #roots = new Map<string, string>()
  /** Claims as normalised, by root and text: plans repeat the same few (cleared when no run is tracked). */
  readonly #paths = new Map<string, NormalisedClaim>()
  /** A task's plan claims, normalised once. */
  readonly #normalised = new WeakMap<CompiledTask, readonly string[]>()

  /** Throws ERR_PLAN_INVALID when a task of `plan` claims a path outside `root` (symlinks resolved). */
  check(root: string, plan: CompiledPlan): void {
    for (const task of plan.tasks) {
      for (const claim of task.claims) {
        const normal = this.#normalise(root, claim)
        if (!('refused' in normal)) continue
        const message =
          `Task "${task.id}" claims a path outside the run's root: ${normal.refused}; ` + `claims name files under the plan's directory`
        throw new TroupeError('ERR_PLAN_INVALID', message)
      }
    }
  }

  /** Compares run `runId`'s claims as real paths relative to `root` (see normaliseClaim) until {@link forget}. */
  track(runId: string, root: string): void {
    this.#roots.set(runId, root)
  }

  forget(runId: string): void {
    this.#roots.delete(runId)
    if (this.#roots.size === 0) this.#paths.clear()
  }

  #normalise(root: string, claim: string): NormalisedClaim {
    const key = `${root}\u0000${claim}`
    let normal = this.#paths.get(key)
    if (normal === undefined) this.#paths.set(key, (normal = normaliseClaim(root, claim)))
    return normal
  }

  /** The task's plan claims as compared: normalised when its run has a root, else as written. */
  #claimsOf(runId: string, task: CompiledTask): readonly string[] {
    const root = this.#roots.get(runId)
    if (root === undefined) return task.claims
    let claims = this.#normalised.get(task)
    if (claims === undefined) {
      // A claim outside the root (a task added at run time) is compared as written.
      claims = task.claims.map((claim) => {
        const normal = this.#normalise(root, claim)
        return 'claim' in normal ? normal.claim : claim
      })
      this.#normalised.set(task, claims)
    }
    return claims
  }

  /** Tasks holding claims right now. */
  get size(): number {
    return this.#holders.size
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    const key = keyOf(runId, task.id)
    if (task.parent !== undefined) this.#parents.set(key, keyOf(runId, task.parent))
    if (task.claims.length === 0) return true
    const claims = this.#claimsOf(runId, task)
    if (this.#conflict(runId, task.id, claims) !== undefined) {
      this.#parents.delete(key)
      return false
    }
    this.#holderFor(runId, task.id).claims.push(...claims)
    return true
  }

  release(runId: string, task: CompiledTask): void {
    this.#holders.delete(keyOf(runId, task.id))
    this.#parents.delete(keyOf(runId, task.id))
  }

  /** The task waits for tasks it spawned: it lends them its claims. */
  suspend(runId: string, task: CompiledTask): boolean {
    const holder = this.#holders.get(keyOf(runId, task.id))
    if (holder === undefined) return false
    holder.waiting = true
    return true
  }

  /** The attempt ended while waiting: its claims go (they were only lent). */
  releaseSuspended(runId: string, task: CompiledTask): void {
    this.release(runId, task)
  }

  /** The waiting is over: its children have ended, and nobody else could take what it held. */
  resume(runId: string, task: CompiledTask): boolean {
    const holder = this.#holders.get(keyOf(runId, task.id))
    if (holder !== undefined) holder.waiting = false
    return true
  }

  /** `ctx.claim(path)`: takes `path` for the task unless another task holds an overlapping claim. */
  claim(runId: string, taskId: string, raw: string): ClaimResult {
    const root = this.#roots.get(runId)
    const normal = root === undefined ? { claim: raw } : this.#normalise(root, raw)
    if ('refused' in normal) return { granted: false, reason: normal.refused }
    const path = normal.claim
    const conflict = this.#conflict(runId, taskId, [path])
    if (conflict !== undefined) return { granted: false, holder: conflict.taskId, holderRunId: conflict.runId }
    this.#holderFor(runId, taskId).claims.push(path)
    return { granted: true }
  }

  /** `ctx.release(path)`: gives back one hold on `path` (no-op when not held). Returns whether it was held. */
  unclaim(runId: string, taskId: string, raw: string): boolean {
    const root = this.#roots.get(runId)
    const normal = root === undefined ? { claim: raw } : this.#normalise(root, raw)
    if ('refused' in normal) return false
    const path = normal.claim
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
      if (key === self || (holder.waiting && this.#isAncestor(key, self))) continue
      if (firstOverlap(claims, holder.claims) !== undefined) return holder
    }
    return undefined
  }

  /** Whether task `ancestor` spawned task `key`, or one of its ancestors (all keys of one run). */
  #isAncestor(ancestor: string, key: string): boolean {
    for (let at = this.#parents.get(key); at !== undefined; at = this.#parents.get(at)) if (at === ancestor) return true
    return false
  }

  #holderFor(runId: string, taskId: string): Holder {
    const key = keyOf(runId, taskId)
    let holder = this.#holders.get(key)
    if (holder === undefined) this.#holders.set(key, (holder = { runId, taskId, claims: [], waiting: false }))
    return holder
  }
}

function keyOf(runId: string, taskId: string): string {
  return `${runId}\u0000${taskId}`
}
