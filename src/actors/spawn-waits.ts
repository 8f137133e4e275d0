import type { Clock } from '../runtime/core/clock.ts'

/** One `ctx.spawn(tasks, { wait: true })` or `wait_tasks` call, until its tasks have all ended (or its time is up). */
interface Wait {
  readonly parent: number
  readonly attempt: number
  readonly children: readonly number[]
  left: number
  timedOut: boolean
  timer?: unknown
  /** Settles the wait: `true` when its time ran out before every task ended. */
  readonly resolve: (timedOut: boolean) => void
}

/** What the waits need from their run. */
export interface WaitHost {
  isEnded(task: number): boolean
  /** The parent gives its slot back (and what its gates let it give). */
  park(parent: number): void
  /** Times `wait_tasks`' `timeout` on the run's clock. */
  readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>
  /** A wait timed out and its parent became resumable outside a task's end: the run should drain. */
  resumable(): void
}

/**
 * Parents waiting for the tasks they spawned. A parent parks (gives its slot back) when its
 * first wait opens; when the tasks of a wait have all ended it is answered at once if it
 * still waits for others, else it becomes resumable: the run gives it a slot again, before
 * any new start ({@link nextResumable}), and then answers it. So a run whose every slot
 * holds a waiting parent still makes progress: the parents hold no slot.
 */
export class SpawnWaits {
  readonly #host: WaitHost
  readonly #byChild = new Map<number, Wait[]>()
  /** Per parked parent: its open waits. */
  readonly #parked = new Map<number, { open: number }>()
  readonly #resumable: Wait[] = []

  constructor(host: WaitHost) {
    this.#host = host
  }

  /** Whether `parent` waits already (parked or holding its slot). */
  isWaiting(parent: number): boolean {
    return this.#parked.has(parent)
  }

  /** Resumable parents, ready for a slot. */
  get resumable(): number {
    return this.#resumable.length
  }

  /**
   * Waits for `children` on behalf of attempt `attempt` of `parent`; resolves `true` when
   * `timeoutMs` ran out first (the parent is then resumed like after a completed wait).
   */
  wait(parent: number, attempt: number, children: readonly number[], timeoutMs?: number): Promise<boolean> {
    const host = this.#host
    const left = children.filter((c) => !host.isEnded(c)).length
    if (left === 0) return Promise.resolve(false)
    return new Promise((resolve) => {
      const wait: Wait = { parent, attempt, children, left, timedOut: false, resolve }
      if (timeoutMs !== undefined) wait.timer = host.clock.setTimeout(() => this.#expire(wait), timeoutMs)
      for (const child of children) {
        if (host.isEnded(child)) continue
        const waits = this.#byChild.get(child)
        if (waits === undefined) this.#byChild.set(child, [wait])
        else waits.push(wait)
      }
      const parked = this.#parked.get(parent)
      if (parked !== undefined) parked.open++
      else {
        this.#parked.set(parent, { open: 1 })
        host.park(parent)
      }
    })
  }

  /** A task ended: answer, or make resumable, the waits it completes. */
  ended(task: number): void {
    const waits = this.#byChild.get(task)
    if (waits === undefined) return
    this.#byChild.delete(task)
    for (const wait of waits) if (--wait.left === 0) this.#complete(wait)
  }

  /** A wait's time ran out: it stops waiting for its tasks and completes, timed out. */
  #expire(wait: Wait): void {
    if (wait.left === 0) return
    wait.left = 0
    wait.timedOut = true
    for (const child of wait.children) {
      const waits = this.#byChild.get(child)
      if (waits === undefined) continue
      const kept = waits.filter((w) => w !== wait)
      if (kept.length === 0) this.#byChild.delete(child)
      else this.#byChild.set(child, kept)
    }
    this.#complete(wait)
    this.#host.resumable()
  }

  /** The oldest resumable wait, without taking it; see {@link resumed}. */
  nextResumable(): { readonly parent: number; readonly attempt: number } | undefined {
    const wait = this.#resumable[0]
    if (wait === undefined) return undefined
    return { parent: wait.parent, attempt: wait.attempt }
  }

  /** The oldest resumable parent has its slot again: answer it. */
  resumed(): void {
    const wait = this.#resumable.shift()
    if (wait === undefined) return
    this.#parked.delete(wait.parent)
    wait.resolve(wait.timedOut)
  }

  /** The oldest resumable wait's attempt is on its way out (timed out, cancelled): forget the wait, keep the parent parked until its attempt ends. */
  discardResumable(): void {
    this.#resumable.shift()
  }

  /**
   * The parent's attempt ended while parked (timeout, cancel, thread death): forget its
   * waits (the run's gate ledger takes back what it had suspended before releasing it).
   */
  dropParent(parent: number): void {
    this.#parked.delete(parent)
    for (let i = this.#resumable.length - 1; i >= 0; i--) if (this.#resumable[i]!.parent === parent) this.#resumable.splice(i, 1)
    for (const [child, waits] of this.#byChild) {
      for (const wait of waits) if (wait.parent === parent && wait.timer !== undefined) this.#host.clock.clearTimeout(wait.timer)
      const kept = waits.filter((w) => w.parent !== parent)
      if (kept.length === 0) this.#byChild.delete(child)
      else if (kept.length < waits.length) this.#byChild.set(child, kept)
    }
  }

  /** Waits of `parent` still open besides a completed one answer it at once; the last makes it resumable. */
  #complete(wait: Wait): void {
    if (wait.timer !== undefined) this.#host.clock.clearTimeout(wait.timer)
    const parked = this.#parked.get(wait.parent)
    if (parked !== undefined && parked.open > 1) {
      parked.open--
      wait.resolve(wait.timedOut)
      return
    }
    this.#resumable.push(wait)
  }
}
