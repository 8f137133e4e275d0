import { createHash, randomUUID } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse, stringify } from '../journal/codec.ts'
import { processAlive } from '../core/process-alive.ts'

/** What one cached task left: its output, and for a worktree task the change it made. */
export interface CacheEntry {
  /** The task that stored it (for people reading the directory; the key decides). */
  readonly taskId: string
  readonly output: unknown
  /** Worktree tasks: `git diff --binary` from the tree it started on to the tree it left; '' for no change. */
  readonly patch?: string
  /** When it was stored, epoch ms. */
  readonly storedAt: number
}

/** The cache's directory under `checkpoint.dir`. */
export const CACHE_DIR = 'cache'

/** The file suffix of an entry: nothing else in the directory is ever read or evicted. */
const SUFFIX = '.entry'
const FORMAT = 'troupe-cache-1'
const KEY_PATTERN = /^[\w-]{16,128}$/

/**
 * The task cache on disk: one file per key in `dir` (`<checkpoint.dir>/cache`), holding a
 * format line, the SHA-256 of the body, and the body (the entry through the journal's codec,
 * so Maps, Sets, dates and `undefined` survive). Written to a temp file and renamed, so a
 * reader sees the old entry or the new one, never half of one; a crash of the machine may
 * lose or tear it, and the checksum makes that a miss. Reading checks the format, the checksum and the
 * key: an entry that fails any check (truncated, edited, garbage) is a miss, and is removed.
 *
 * Size bound: after each store, least recently used entries (by mtime; a hit touches its
 * file) are removed until the directory's entries take at most `maxBytes`. An entry larger
 * than `maxBytes` is not stored. The tally is read from the directory once per store
 * instance and kept up to date by its own writes; other processes' writes are counted at the
 * next instance's first store.
 */
export class CacheStore {
  readonly dir: string
  readonly maxBytes: number
  /** Entry file name → [size, last use]; loaded on the first store. */
  #tally: Map<string, [number, number]> | undefined
  #writes: Promise<unknown> = Promise.resolve()

  constructor(dir: string, maxBytes: number) {
    this.dir = dir
    this.maxBytes = maxBytes
  }

  /** The entry stored under `key`, or undefined (none, or unreadable: then it is removed). */
  async read(key: string): Promise<CacheEntry | undefined> {
    if (!KEY_PATTERN.test(key)) return undefined
    const file = join(this.dir, key + SUFFIX)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch {
      return undefined
    }
    const entry = decodeEntry(text, key)
    if (entry === undefined) {
      await rm(file, { force: true }).catch(() => undefined)
      this.#tally?.delete(key + SUFFIX)
      return undefined
    }
    const now = new Date()
    // Most recently used: evicted last.
    await utimes(file, now, now).catch(() => undefined)
    this.#tally?.get(key + SUFFIX)?.splice(1, 1, now.getTime())
    return entry
  }

  /**
   * Stores `entry` under `key` atomically, then evicts. Resolves to false when the entry
   * cannot be stored (its output cannot be encoded, or it alone exceeds `maxBytes`).
   * Rejects on a file-system error.
   */
  write(key: string, entry: CacheEntry): Promise<boolean> {
    // One store at a time per instance: the tally and the eviction see every write in order.
    const done = this.#writes.then(() => this.#write(key, entry))
    this.#writes = done.catch(() => undefined)
    return done
  }

  /** Removes the entry stored under `key`, if any (queued behind the writes in flight). */
  remove(key: string): Promise<void> {
    const done = this.#writes.then(async () => {
      if (!KEY_PATTERN.test(key)) return
      await rm(join(this.dir, key + SUFFIX), { force: true })
      this.#tally?.delete(key + SUFFIX)
    })
    this.#writes = done.catch(() => undefined)
    return done
  }

  async #write(key: string, entry: CacheEntry): Promise<boolean> {
    if (!KEY_PATTERN.test(key)) return false
    let body: string
    try {
      body = stringify({ key, ...entry })
    } catch {
      return false
    }
    const text = `${FORMAT}\n${sha256(body)}\n${body}`
    const bytes = Buffer.byteLength(text)
    if (bytes > this.maxBytes) return false
    await mkdir(this.dir, { recursive: true })
    const tally = await this.#loadTally()
    const name = key + SUFFIX
    const temp = join(this.dir, `.${key}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`)
    try {
      // Not fsync'ed: the task waits for its store, and a crash that loses or tears an entry
      // leaves a miss (the checksum), never a wrong output.
      await writeFile(temp, text, { flag: 'wx' })
      await rename(temp, join(this.dir, name))
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined)
      throw error
    }
    tally.set(name, [bytes, Date.now()])
    await this.#evict(tally, name)
    return true
  }

  /** Removes least recently used entries (never `keep`, the one just stored) until the total fits. */
  async #evict(tally: Map<string, [number, number]>, keep: string): Promise<void> {
    let total = 0
    for (const [size] of tally.values()) total += size
    if (total <= this.maxBytes) return
    const oldest = [...tally.entries()].filter(([name]) => name !== keep).sort((a, b) => a[1][1] - b[1][1])
    for (const [name, [size]] of oldest) {
      if (total <= this.maxBytes) break
      await rm(join(this.dir, name), { force: true })
      tally.delete(name)
      total -= size
    }
  }

  async #loadTally(): Promise<Map<string, [number, number]>> {
    if (this.#tally !== undefined) return this.#tally
    const tally = new Map<string, [number, number]>()
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      // A temp file of a process that died mid-write (kill -9): nobody will rename it.
      const writer = TEMP_PATTERN.exec(name)?.[1]
      if (writer !== undefined && !processAlive(Number(writer))) await rm(join(this.dir, name), { force: true }).catch(() => undefined)
      if (!name.endsWith(SUFFIX)) continue
      const info = await stat(join(this.dir, name)).catch(() => undefined)
      if (info?.isFile()) tally.set(name, [info.size, info.mtimeMs])
    }
    this.#tally = tally
    return tally
  }
}

/** `.<key>.<pid>.<random>.tmp`: an entry being written by process `pid`. */
const TEMP_PATTERN = /^\.[\w-]+\.(\d+)\.[\w-]+\.tmp$/

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The entry in `text`, if it is whole and stored under `key`. */
function decodeEntry(text: string, key: string): CacheEntry | undefined {
  const first = text.indexOf('\n')
  const second = text.indexOf('\n', first + 1)
  if (first < 0 || second < 0 || text.slice(0, first) !== FORMAT) return undefined
  const body = text.slice(second + 1)
  if (sha256(body) !== text.slice(first + 1, second)) return undefined
  try {
    const value = parse(body) as { key?: unknown; taskId?: unknown; output?: unknown; patch?: unknown; storedAt?: unknown }
    if (value === null || typeof value !== 'object' || value.key !== key || typeof value.taskId !== 'string') return undefined
    if (value.patch !== undefined && typeof value.patch !== 'string') return undefined
    return {
      taskId: value.taskId,
      output: value.output,
      ...(value.patch === undefined ? {} : { patch: value.patch }),
      storedAt: typeof value.storedAt === 'number' ? value.storedAt : 0,
    }
  } catch {
    return undefined
  }
}
