import { lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import picomatch from 'picomatch'
import type { TaskStateEvent } from '../core/events.ts'
import type { CompiledTask } from '../plan/plan.ts'
import type { Gate } from '../admission/gate.ts'
import type { Run } from '../run.ts'

/** The files one claim covers: a literal path, or a glob walked from its static base. */
interface ClaimScope {
  readonly root: string
  /** Undefined for a literal path: then `root` itself (a file, or every file under a directory). */
  readonly matches: ((path: string) => boolean) | undefined
}

/** The claimed files of one task as they were before its first attempt. */
interface FileSnapshot {
  readonly scopes: readonly ClaimScope[]
  /** Absolute path → content; paths absent before the task are not in the map. */
  readonly files: ReadonlyMap<string, Buffer>
}

interface Entry {
  snapshot: FileSnapshot | undefined
  /** The task entered RUNNING since the snapshot was taken. */
  started: boolean
  /** An attempt's worker has not settled yet: restoring now would race its writes. */
  running: boolean
  failed: boolean
}

/**
 * Rollback of claimed files (`checkpoint.rollbackOnFailure`). A {@link Gate}, placed after the
 * claims gate, so the snapshot is taken while the task holds its claims: before a task with
 * `claims` first runs, the files its claims cover (globs expanded relative to the plan's
 * baseDir) are read into memory, with which of them exist. When the task ends FAILED and its
 * last worker has settled, the files are restored: changed ones rewritten, deleted ones
 * recreated, created ones deleted. Completed (and cancelled) tasks keep their changes.
 * Snapshots are held in memory for as long as the task runs, so claims should cover the
 * files a task writes, not whole trees.
 */
export class FileRollback implements Gate {
  readonly #baseDirs = new Map<string, string>()
  readonly #entries = new Map<string, Entry>()

  /** Follows `run`'s task states until it ends. */
  watch(run: Run): void {
    const runId = run.id
    this.#baseDirs.set(runId, run.plan.baseDir)
    const onState = (event: TaskStateEvent) => this.#onState(run, event)
    run.on('task:state', onState)
    void run.result.then(() => {
      run.off('task:state', onState)
      this.#baseDirs.delete(runId)
      for (const key of this.#entries.keys()) if (key.startsWith(`${runId}\0`)) this.#entries.delete(key)
    })
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    if (task.claims.length === 0) return true
    const baseDir = this.#baseDirs.get(runId)
    if (baseDir === undefined) return true
    const key = keyOf(runId, task)
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      entry = { snapshot: undefined, started: false, running: false, failed: false }
      this.#entries.set(key, entry)
    }
    entry.snapshot ??= takeSnapshot(task.claims, baseDir)
    entry.running = true
    return true
  }

  release(runId: string, task: CompiledTask): void {
    if (task.claims.length === 0) return
    const key = keyOf(runId, task)
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    entry.running = false
    // A later gate refused the task: it never ran, and the snapshot may go stale before it does.
    if (!entry.started) return void this.#entries.delete(key)
    if (entry.failed) this.#restore(key, entry)
  }

  #onState(run: Run, event: TaskStateEvent): void {
    const index = run.plan.byId.get(event.taskId)
    const task = index === undefined ? undefined : run.plan.tasks[index]
    if (task === undefined || task.claims.length === 0) return
    const key = keyOf(run.id, task)
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    if (event.state === 'RUNNING') entry.started = true
    else if (event.state === 'FAILED') {
      entry.failed = true
      if (!entry.running) this.#restore(key, entry)
    } else if (event.state !== 'QUEUED') this.#entries.delete(key)
  }

  #restore(key: string, entry: Entry): void {
    this.#entries.delete(key)
    if (entry.snapshot === undefined) return
    try {
      restoreSnapshot(entry.snapshot)
    } catch (error) {
      process.emitWarning(`troupe: cannot roll back the claimed files of a failed task: ${(error as Error).message}`, 'TroupeRollbackWarning')
    }
  }
}

function keyOf(runId: string, task: CompiledTask): string {
  return `${runId}\0${task.index}`
}

/** Where each claim's files live: literal paths as they are, globs from their static base. */
export function claimScopes(claims: readonly string[], baseDir: string): ClaimScope[] {
  return claims.map((claim) => {
    const absolute = isAbsolute(claim) ? claim : resolve(baseDir, claim)
    const scan = picomatch.scan(absolute)
    if (!scan.isGlob) return { root: absolute, matches: undefined }
    return { root: scan.base === '' ? baseDir : scan.base, matches: picomatch(absolute, { dot: true }) }
  })
}

/** The files a set of claims covers right now. */
export function filesInScope(scopes: readonly ClaimScope[]): Set<string> {
  const files = new Set<string>()
  for (const scope of scopes) collect(scope.root, scope.matches, files)
  return files
}

function collect(path: string, matches: ((path: string) => boolean) | undefined, into: Set<string>): void {
  let stat
  try {
    stat = lstatSync(path)
  } catch {
    return
  }
  if (stat.isDirectory()) {
    for (const name of readdirSync(path)) collect(join(path, name), matches, into)
  } else if (stat.isFile() && (matches === undefined || matches(path))) {
    into.add(path)
  }
}

export function takeSnapshot(claims: readonly string[], baseDir: string): FileSnapshot {
  const scopes = claimScopes(claims, baseDir)
  const files = new Map<string, Buffer>()
  for (const file of filesInScope(scopes)) files.set(file, readFileSync(file))
  return { scopes, files }
}

/** Puts the files back as they were: rewrites changed and deleted files, deletes new ones. */
export function restoreSnapshot(snapshot: FileSnapshot): void {
  for (const file of filesInScope(snapshot.scopes)) {
    if (!snapshot.files.has(file)) rmSync(file, { force: true })
  }
  for (const [file, content] of snapshot.files) {
    let same = false
    try {
      same = readFileSync(file).equals(content)
    } catch {
      // deleted by the task
    }
    if (same) continue
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, content)
  }
}

