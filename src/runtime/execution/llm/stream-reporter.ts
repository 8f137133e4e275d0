import type { AttemptListener } from '../executor.ts'

/** Streamed progress is reported at most this often (a model can stream hundreds of deltas a second). */
export const PROGRESS_INTERVAL_MS = 250

/**
 * Turns a model's streamed text into the attempt's progress ("N tokens so far") and log
 * lines (each complete line of the answer), and keeps the lines for the attempt's log file.
 */
export class StreamReporter {
  readonly #listener: AttemptListener
  readonly #now: () => number
  readonly #maxTokens: number | undefined
  /** Streamed deltas: each is about one token, close enough for progress. */
  #deltas = 0
  #partial = ''
  #reportedAt = -Infinity
  readonly lines: string[] = []

  constructor(listener: AttemptListener, now: () => number, maxTokens: number | undefined) {
    this.#listener = listener
    this.#now = now
    this.#maxTokens = maxTokens
  }

  get deltas(): number {
    return this.#deltas
  }

  delta(text: string): void {
    this.#deltas++
    const pieces = (this.#partial + text).split('\n')
    this.#partial = pieces.pop() ?? ''
    for (const line of pieces) this.#line(line)
    const now = this.#now()
    if (now - this.#reportedAt >= PROGRESS_INTERVAL_MS) {
      this.#reportedAt = now
      this.#progress()
    }
  }

  /** The stream ended: the last partial line is logged and the final count reported. */
  end(): void {
    if (this.#partial.length > 0) this.#line(this.#partial)
    this.#partial = ''
    if (this.#deltas > 0) this.#progress()
  }

  #line(line: string): void {
    this.lines.push(line)
    this.#listener.onLog(line)
  }

  #progress(): void {
    const fraction = this.#maxTokens === undefined ? 0 : Math.min(0.99, this.#deltas / this.#maxTokens)
    this.#listener.onProgress(fraction, `${this.#deltas} tokens`)
  }
}
