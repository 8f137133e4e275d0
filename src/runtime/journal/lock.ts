import { randomUUID } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { TroupeError } from '../core/errors.ts'
import { processAlive } from '../core/process-alive.ts'

/** What a lock file says about its holder. */
export interface LockHolder {
  readonly pid: number
  readonly host: string
  readonly startedAt: number
  /** Unique per acquisition, so a release never removes someone else's lock. */
  readonly token: string
}

/** The lock file of a run: `<runDir>/lock`. */
export function lockFile(runDirectory: string): string {
  return join(runDirectory, 'lock')
}

const held = new Map<string, string>()
let exitHookInstalled = false

/**
 * Holds a run id for this process: `<runDir>/lock`, created exclusively, with pid, host and
 * start time inside. Throws `ERR_RUN_LOCKED` naming the holder while another live process
 * holds it. A lock whose holder is dead (same host, pid gone) is taken over; takers
 * serialise on `<runDir>/lock.takeover` (also created exclusively), and only remove the
 * stale lock if it is still byte for byte the one they judged stale, so two takers never
 * both win.
 *
 * Synchronous on purpose: `runtime.run()` refuses a locked id before it returns.
 */
export class RunLock {
  readonly file: string
  readonly holder: LockHolder
  #released = false

  private constructor(file: string, holder: LockHolder) {
    this.file = file
    this.holder = holder
  }

  static acquire(runDirectory: string, runId: string, now: () => number = Date.now): RunLock {
    mkdirSync(runDirectory, { recursive: true })
    const file = lockFile(runDirectory)
    const holder: LockHolder = { pid: process.pid, host: hostname(), startedAt: now(), token: randomUUID() }
    const text = `${JSON.stringify(holder)}\n`
    for (let round = 0; round < 50; round++) {
      if (createExclusive(file, text)) {
        installExitHook()
        held.set(file, text)
        return new RunLock(file, holder)
      }
      const seen = readText(file)
      if (seen === undefined) continue
      const other = parseHolder(seen)
      if (other !== undefined && isAlive(other)) {
        throw new TroupeError(
          'ERR_RUN_LOCKED',
          `Run "${runId}" is already running: held by pid ${other.pid} on host ${other.host} since ${new Date(other.startedAt).toISOString()} (${file}). Wait for it to end, or use another --run-id.`,
        )
      }
      takeOver(file, seen, text)
    }
    throw new TroupeError('ERR_RUN_LOCKED', `Run "${runId}": could not take over the lock ${file}; another process keeps taking it`)
  }

  /** Removes the lock if it is still ours. Idempotent. */
  release(): void {
    if (this.#released) return
    this.#released = true
    const text = held.get(this.file)
    held.delete(this.file)
    if (text !== undefined) removeIfUnchanged(this.file, text)
  }
}

/** Removes the stale lock (seen as `stale`) under the takeover lock. */
function takeOver(file: string, stale: string, mine: string): void {
  const takeover = `${file}.takeover`
  if (!createExclusive(takeover, mine)) {
    // Another taker is at it; a taker killed mid-takeover leaves its file behind, with a dead pid.
    const seen = readText(takeover)
    const other = seen === undefined ? undefined : parseHolder(seen)
    if (seen !== undefined && (other === undefined || !isAlive(other))) removeIfUnchanged(takeover, seen)
    return
  }
  try {
    removeIfUnchanged(file, stale)
  } finally {
    removeIfUnchanged(takeover, mine)
  }
}

/** Creates `file` with `text`, atomically and only if it does not exist: a hard link of a complete temp file. */
function createExclusive(file: string, text: string): boolean {
  const temp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`
  writeFileSync(temp, text)
  try {
    linkSync(temp, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  } finally {
    unlinkSync(temp)
  }
}

function removeIfUnchanged(file: string, text: string): void {
  if (readText(file) !== text) return
  try {
    unlinkSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.startedAt === 'number' && typeof value.token === 'string') {
      return value as LockHolder
    }
  } catch {
    // Not a lock troupe wrote: treated as stale.
  }
  return undefined
}

/** The live holder of run directory `runDirectory`'s lock, if any. */
export function liveHolder(runDirectory: string): LockHolder | undefined {
  const text = readText(lockFile(runDirectory))
  const holder = text === undefined ? undefined : parseHolder(text)
  return holder !== undefined && isAlive(holder) ? holder : undefined
}

/** Whether the holder may still be running. A holder on another host is assumed alive: its pid means nothing here. */
export function isAlive(holder: Pick<LockHolder, 'pid' | 'host'>): boolean {
  return holder.host !== hostname() || processAlive(holder.pid)
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // A process that exits without ending its runs (process.exit in a handler) frees its ids.
  process.on('exit', () => {
    for (const [file, text] of held) removeIfUnchanged(file, text)
    held.clear()
  })
}
