/**
 * A binary min-heap of task indices ordered by a comparator. Plain arrays of numbers keep
 * it allocation-free per operation, which matters for 100,000-task plans.
 */
export class ReadyQueue {
  readonly #heap: number[] = []
  readonly #before: (a: number, b: number) => boolean
  readonly #classOf: ((task: number) => number) | undefined
  /** Tasks queued per class (see {@link countOf}). */
  readonly #counts: number[] = []

  /**
   * `before(a, b)`: task a should start before task b. Must be a strict total order.
   * `classOf`: a small integer per task (its agent); the queue counts its tasks per class.
   */
  constructor(before: (a: number, b: number) => boolean, classOf?: (task: number) => number) {
    this.#before = before
    this.#classOf = classOf
  }

  get size(): number {
    return this.#heap.length
  }

  /** Tasks of class `c` in the queue. */
  countOf(c: number): number {
    return this.#counts[c] ?? 0
  }

  push(task: number): void {
    if (this.#classOf !== undefined) {
      const c = this.#classOf(task)
      this.#counts[c] = (this.#counts[c] ?? 0) + 1
    }
    const heap = this.#heap
    let at = heap.push(task) - 1
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (!this.#before(task, heap[parent]!)) break
      heap[at] = heap[parent]!
      at = parent
    }
    heap[at] = task
  }

  peek(): number | undefined {
    return this.#heap[0]
  }

  pop(): number | undefined {
    const heap = this.#heap
    if (heap.length === 0) return undefined
    const top = heap[0]!
    if (this.#classOf !== undefined) this.#counts[this.#classOf(top)]!--
    const last = heap.pop()!
    if (heap.length > 0) {
      let at = 0
      const n = heap.length
      for (;;) {
        const left = 2 * at + 1
        if (left >= n) break
        const right = left + 1
        const child = right < n && this.#before(heap[right]!, heap[left]!) ? right : left
        if (!this.#before(heap[child]!, last)) break
        heap[at] = heap[child]!
        at = child
      }
      heap[at] = last
    }
    return top
  }

  /** Removes every task, returning them in no particular order. */
  drain(): number[] {
    this.#counts.fill(0)
    return this.#heap.splice(0)
  }
}
