import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { attemptOutputFile } from '../../journal/paths.ts'

/**
 * One attempt's raw output file (`<runDir>/logs/<taskId>/<attempt>.output.log`): every
 * stdout and stderr line of its process, in order, unparsed (a CLI's JSON events). What the
 * agent logged goes to `<attempt>.log` through the journal's log store. Opened for append (a
 * rate-limited attempt is retried under the same number) with the first line: a silent attempt
 * costs no file (nor its open and close on the attempt's way out). A no-op when the run has no directory.
 */
export class AttemptLog {
  readonly #file: string | undefined
  /** Opened with the first line; null once opening failed (not tried again). */
  #stream: WriteStream | null | undefined

  constructor(runDir: string | undefined, taskId: string, attempt: number) {
    this.#file = runDir === undefined ? undefined : attemptOutputFile(runDir, taskId, attempt)
  }

  write(line: string): void {
    if (this.#stream === undefined) this.#open()
    this.#stream?.write(`${line}\n`)
  }

  #open(): void {
    const file = this.#file
    this.#stream = null
    if (file === undefined) return
    try {
      mkdirSync(dirname(file), { recursive: true })
      this.#stream = createWriteStream(file, { flags: 'a' })
      // A full disk must not fail the attempt: the log is a copy, the output keeps the tails.
      this.#stream.on('error', () => {})
    } catch {
      this.#stream = null
    }
  }

  close(): Promise<void> {
    const stream = this.#stream
    if (!stream || stream.destroyed) return Promise.resolve()
    return new Promise((resolve) => stream.end(resolve))
  }
}
