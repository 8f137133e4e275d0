import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { attemptLogFile } from '../../journal/paths.ts'

/**
 * One attempt's log file (`<runDir>/logs/<taskId>/<attempt>.log`): every stdout and stderr
 * line of its process, in order. Opened for append, since the journal's log store writes
 * `ctx.log` lines to the same file. A no-op when the run has no directory.
 */
export class AttemptLog {
  readonly #stream: WriteStream | undefined

  constructor(runDir: string | undefined, taskId: string, attempt: number) {
    if (runDir === undefined) return
    const file = attemptLogFile(runDir, taskId, attempt)
    try {
      mkdirSync(dirname(file), { recursive: true })
      this.#stream = createWriteStream(file, { flags: 'a' })
      // A full disk must not fail the attempt: the log is a copy, the output keeps the tails.
      this.#stream.on('error', () => {})
    } catch {
      this.#stream = undefined
    }
  }

  write(line: string): void {
    this.#stream?.write(`${line}\n`)
  }

  close(): Promise<void> {
    const stream = this.#stream
    if (stream === undefined || stream.destroyed) return Promise.resolve()
    return new Promise((resolve) => stream.end(resolve))
  }
}
