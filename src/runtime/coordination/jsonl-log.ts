import { appendFile, mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * A run's append-only JSONL file (the mailbox's `messages.jsonl`, the scratchpad's
 * `scratchpad.jsonl`): one record a line, appended in order, each on disk before its
 * `append` resolves, so a resumed run (or a retried attempt) reads every record stored
 * before. Without a file (journal off) appending stores nothing.
 */
export class JsonlLog {
  readonly file: string | undefined
  #writes: Promise<void> = Promise.resolve()

  constructor(file: string | undefined) {
    this.file = file
  }

  /** Appends `record` as one line, after every record appended before it; resolves once it is written. */
  async append(record: unknown): Promise<void> {
    if (this.file === undefined) return
    const file = this.file
    const write = this.#writes.then(() => appendFile(file, `${JSON.stringify(record)}\n`))
    // A failed write rejects its own append only: the records after it are still written.
    this.#writes = write.catch(() => undefined)
    await write
  }

  /** Waits for the writes in flight. */
  async flush(): Promise<void> {
    await this.#writes
  }
}

/**
 * The records a previous process of the run stored in `file` (none when it does not exist
 * yet), creating its directory for the appends to come. See {@link parseJsonl}.
 */
export async function readJsonl<T>(file: string, accept: (value: unknown) => T | undefined): Promise<T[]> {
  await mkdir(dirname(file), { recursive: true })
  let text = ''
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  return parseJsonl(text, accept)
}

/**
 * The records of a JSONL text that `accept` takes (it returns undefined for a value of the
 * wrong shape). Blank lines, foreign lines and a torn last line (a process killed mid-write:
 * every earlier line was complete) are dropped.
 */
export function parseJsonl<T>(text: string, accept: (value: unknown) => T | undefined): T[] {
  const records: T[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let record: T | undefined
    try {
      record = accept(JSON.parse(line))
    } catch {
      // torn or foreign line
    }
    if (record !== undefined) records.push(record)
  }
  return records
}
