import { JsonlLog, parseJsonl, readJsonl } from './jsonl-log.ts'

/** One note on a run's scratchpad. */
export interface Note {
  readonly taskId: string
  /** Epoch ms. */
  readonly at: number
  readonly text: string
}

/** Longest note kept, in characters; longer ones are cut with a marker. */
export const MAX_NOTE_CHARS = 8_000
/** Notes kept per run; appending past it fails, so agents learn the pad is full. */
export const MAX_NOTES = 10_000
/** Most notes one page holds (`scratchpad_read`'s `limit`). */
export const MAX_PAGE_NOTES = 1_000
/** Most note text one page holds, in characters (a page always holds at least one note). */
export const MAX_PAGE_CHARS = 256 * 1024

/** One page of notes: `next` is the `since` of the following page, absent at the end. */
export interface NotePage {
  readonly notes: readonly Note[]
  /** Notes on the pad now. */
  readonly total: number
  readonly next?: number
}

/**
 * A run's shared scratchpad (the seeds' scratchpad.md / activity tracker): an append-only
 * list of notes `{ taskId, at, text }` every agent of the run can read and add to. Kept in
 * `<runDir>/scratchpad.jsonl`, one note per line, appended and flushed before `append`
 * resolves, so a resumed run starts with every note taken before the crash. Without a file
 * (journal off) it lives in memory.
 */
export class Scratchpad {
  readonly file: string | undefined
  readonly #notes: Note[]
  readonly #onNote: ((note: Note) => void) | undefined
  readonly #log: JsonlLog

  private constructor(file: string | undefined, notes: Note[], onNote: ((note: Note) => void) | undefined) {
    this.file = file
    this.#log = new JsonlLog(file)
    this.#notes = notes
    this.#onNote = onNote
  }

  /** Opens the run's scratchpad, restoring the notes a previous process of the run wrote. */
  static async open(file: string | undefined, onNote?: (note: Note) => void): Promise<Scratchpad> {
    if (file === undefined) return new Scratchpad(undefined, [], onNote)
    return new Scratchpad(file, await readJsonl(file, parseNote), onNote)
  }

  /** Every note, oldest first. */
  read(): readonly Note[] {
    return this.#notes
  }

  /**
   * Notes from position `since` (0 = the first), at most `limit` and about `MAX_PAGE_CHARS` of
   * text: a reader pages through a large pad instead of copying it whole.
   */
  page(since: number, limit: number): NotePage {
    const notes: Note[] = []
    let chars = 0
    let at = Math.max(0, since)
    for (; at < this.#notes.length && notes.length < limit; at++) {
      const note = this.#notes[at]!
      if (notes.length > 0 && chars + note.text.length > MAX_PAGE_CHARS) break
      chars += note.text.length
      notes.push(note)
    }
    return { notes, total: this.#notes.length, ...(at < this.#notes.length ? { next: at } : {}) }
  }

  get size(): number {
    return this.#notes.length
  }

  /** Adds a note for `taskId`; resolves once it is on disk. */
  async append(taskId: string, text: string, at = Date.now()): Promise<Note> {
    if (typeof text !== 'string' || text.trim() === '') throw new TypeError('scratchpad: a note must be a non-empty string')
    if (this.#notes.length >= MAX_NOTES) throw new RangeError(`scratchpad: the run's scratchpad is full (${MAX_NOTES} notes)`)
    const note: Note = { taskId, at, text: text.length > MAX_NOTE_CHARS ? `${text.slice(0, MAX_NOTE_CHARS)}… [cut at ${MAX_NOTE_CHARS} characters]` : text }
    this.#notes.push(note)
    await this.#log.append(note)
    this.#onNote?.(note)
    return note
  }

  /** Waits for pending writes. */
  flush(): Promise<void> {
    return this.#log.flush()
  }
}

/** The notes of a `scratchpad.jsonl` text (for readers such as `troupe logs --scratchpad`). */
export function parseNotes(text: string): Note[] {
  return parseJsonl(text, parseNote)
}

/** Name of a run's scratchpad file in its run directory. */
export const SCRATCHPAD_FILE = 'scratchpad.jsonl'

function parseNote(parsed: unknown): Note | undefined {
  const value = parsed as Partial<Note>
  if (typeof value.taskId === 'string' && typeof value.at === 'number' && typeof value.text === 'string') return { taskId: value.taskId, at: value.at, text: value.text }
  return undefined
}
