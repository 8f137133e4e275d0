import { appendFileSync, existsSync, statSync } from 'node:fs'
import { appendFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { EventEmitter } from 'node:events'
import type { RunEvents } from '../report/events.ts'
import { attemptLogFile } from './paths.ts'

export interface LogStoreOptions {
  /** Bytes kept per attempt log; past it one truncation line is written and the rest dropped. @default 8 MiB */
  readonly maxBytesPerAttempt?: number
  /** Buffered bytes that trigger a write at once (otherwise on the next turn). @default 256 KiB */
  readonly flushBytes?: number
  /** This invocation's number (Journal.invocation), named in the separator before a resumed attempt's lines. @default 1 */
  readonly invocation?: number
}

interface Pending {
  readonly file: string
  lines: string[]
  bytes: number
}

/**
 * Stores every `task:log` line of every attempt in `attemptLogFile(runDir, taskId, attempt)`.
 * Buffered (one append per file per turn) and bounded per attempt. Files are opened in
 * append mode for each write, so a process agent's executor may write its own stdout and
 * stderr to the same file: lines interleave, none is lost.
 */
export class LogStore {
  readonly #runDir: string
  readonly #maxBytes: number
  readonly #flushBytes: number
  readonly #invocation: number
  readonly #pending = new Map<string, Pending>()
  /** Bytes written (or buffered) per file, for the bound. */
  readonly #sizes = new Map<string, number>()
  readonly #dirs = new Set<string>()
  #buffered = 0
  #flushing: Promise<void> = Promise.resolve()
  #scheduled = false
  #status: 'open' | 'closed' = 'open'
  /** The run had logs before this store: an attempt's log may hold an earlier invocation's lines. */
  readonly #earlierLogs: boolean

  constructor(runDirectory: string, options: LogStoreOptions = {}) {
    this.#runDir = runDirectory
    this.#earlierLogs = existsSync(join(runDirectory, 'logs'))
    this.#maxBytes = options.maxBytesPerAttempt ?? 8 * 1024 * 1024
    this.#flushBytes = options.flushBytes ?? 256 * 1024
    this.#invocation = options.invocation ?? 1
  }

  /** Stores the log lines of `run` until it ends, then closes. */
  static attach(run: EventEmitter<RunEvents> & { readonly result: Promise<unknown> }, runDirectory: string, options?: LogStoreOptions): LogStore {
    const store = new LogStore(runDirectory, options)
    run.on('task:state', (e) => {
      if (e.state === 'RUNNING') store.startAttempt(e.taskId, e.attempt)
    })
    run.on('task:log', (e) => store.write(e.taskId, e.attempt, e.message))
    void run.result.then(() => store.close())
    return store
  }

  /**
   * An attempt starts. When its log already has lines (the same attempt of an earlier
   * invocation: a resumed run appends to the same file), a separator naming the attempt
   * and this invocation goes first, written at once: a process agent's executor may write
   * to the file directly as soon as it starts.
   */
  startAttempt(taskId: string, attempt: number): void {
    // A new run's attempts have no earlier lines to separate from: no stat per task.
    if (this.#status === 'closed' || !this.#earlierLogs) return
    const file = attemptLogFile(this.#runDir, taskId, attempt)
    if (this.#sizes.has(file)) return
    let size = 0
    try {
      // No exception for the usual case, a first attempt with no log yet: it cost ~10 µs per task.
      size = statSync(file, { throwIfNoEntry: false })?.size ?? 0
    } catch {
      return
    }
    if (size === 0) return
    const line = `── troupe: ${taskId} · attempt ${attempt} · invocation ${this.#invocation} · ${new Date().toISOString()} ──\n`
    try {
      appendFileSync(file, line)
      this.#sizes.set(file, size + Buffer.byteLength(line))
    } catch (error) {
      process.emitWarning(`troupe: cannot store the log ${file}: ${(error as Error).message}`, 'TroupeJournalWarning')
    }
  }

  write(taskId: string, attempt: number, message: string): void {
    if (this.#status === 'closed') return
    const file = attemptLogFile(this.#runDir, taskId, attempt)
    const size = this.#sizes.get(file) ?? 0
    if (size > this.#maxBytes) return
    let line = `${message}\n`
    const bytes = Buffer.byteLength(line)
    if (size + bytes <= this.#maxBytes) this.#sizes.set(file, size + bytes)
    else {
      // Past the bound: one truncation line, then nothing (the size is marked past the bound).
      line = `[troupe: log truncated at ${this.#maxBytes} bytes]\n`
      this.#sizes.set(file, this.#maxBytes + 1)
    }
    let pending = this.#pending.get(file)
    if (pending === undefined) {
      pending = { file, lines: [], bytes: 0 }
      this.#pending.set(file, pending)
    }
    pending.lines.push(line)
    pending.bytes += bytes
    this.#buffered += bytes
    if (this.#buffered >= this.#flushBytes) this.#flush()
    else if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(() => this.#flush())
    }
  }

  /** Writes what is buffered; resolves once it is on disk (in the page cache). */
  flush(): Promise<void> {
    this.#flush()
    return this.#flushing
  }

  /** Flushes and stops storing. Idempotent. */
  close(): Promise<void> {
    const done = this.flush()
    this.#status = 'closed'
    return done
  }

  #flush(): void {
    this.#scheduled = false
    if (this.#pending.size === 0) return
    const batch = [...this.#pending.values()]
    this.#pending.clear()
    this.#buffered = 0
    // One write chain: lines of a file reach it in the order they were logged.
    this.#flushing = this.#flushing.then(() => this.#writeBatch(batch))
  }

  async #writeBatch(batch: readonly Pending[]): Promise<void> {
    for (const { file, lines } of batch) {
      try {
        const dir = dirname(file)
        if (!this.#dirs.has(dir)) {
          await mkdir(dir, { recursive: true })
          this.#dirs.add(dir)
        }
        await appendFile(file, lines.join(''))
      } catch (error) {
        process.emitWarning(`troupe: cannot store the log ${file}: ${(error as Error).message}`, 'TroupeJournalWarning')
      }
    }
  }
}
