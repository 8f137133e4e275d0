import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { attemptOutputFile } from '../../journal/paths.ts'

/**
 * One attempt's raw output file (`<runDir>/logs/<taskId>/<attempt>.output.log`): every
 * stdout and stderr line of its process, in order, unparsed (a CLI's JSON events). What the
 * agent logged goes to `<attempt>.log` through the journal's log store. Opened for append (a
 * rate-limited attempt is retried under the same number). A no-op when the run has no directory.
 */
export class AttemptLog {
  readonly #stream: WriteStream | undefined

  constructor(runDir: string | undefined, taskId: string, attempt: number) {
    if (runDir === undefined) return
    const file = attemptOutputFile(runDir, taskId, attempt)
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
