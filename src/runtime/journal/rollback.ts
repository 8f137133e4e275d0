import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import type { EventEmitter } from 'node:events'
import picomatch from 'picomatch'
import type { RunEvents, TaskStateEvent } from '../report/events.ts'
import type { CompiledPlan, CompiledTask } from '../plan/plan.ts'
import type { Gate } from '../admission/gate.ts'

/** What the rollback follows of a run (a `Run`, which sits above this layer): its plan, task states and end. */
export interface WatchedRun extends Pick<EventEmitter<RunEvents>, 'on' | 'off'> {
  readonly id: string
  readonly plan: CompiledPlan
  readonly result: Promise<unknown>
}

/** The files one claim covers: a literal path, or a glob walked from its static base. */
interface ClaimScope {
  readonly root: string
  /** Undefined for a literal path: then `root` itself (a file, or every file under a directory). */
  readonly matches: ((path: string) => boolean) | undefined
}

/** One claimed path as it was: a file's content, or a symbolic link's target (never followed). */
type Saved = Buffer | { readonly link: string }

/** The claimed files of one task as they were before its first attempt. */
interface FileSnapshot {
  readonly scopes: readonly ClaimScope[]
  /** Absolute path → content (or link); paths absent before the task are not in the map. */
  readonly files: ReadonlyMap<string, Saved>
  /** Each claim's containing directory (the claimed directory, a glob's base, a file's parent) → its real path then. */
  readonly roots: ReadonlyMap<string, string | undefined>
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
  watch(run: WatchedRun): void {
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

  #onState(run: WatchedRun, event: TaskStateEvent): void {
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
    } else if (event.state !== 'QUEUED' && event.state !== 'WAITING') this.#entries.delete(key)
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
  } else if ((stat.isFile() || stat.isSymbolicLink()) && (matches === undefined || matches(path))) {
    // A symbolic link is a claimed entry of its own: never followed, so never left behind.
    into.add(path)
  }
}

export function takeSnapshot(claims: readonly string[], baseDir: string): FileSnapshot {
  const scopes = claimScopes(claims, baseDir)
  const files = new Map<string, Saved>()
  for (const file of filesInScope(scopes)) files.set(file, lstatSync(file).isSymbolicLink() ? { link: readlinkSync(file) } : readFileSync(file))
  const roots = new Map<string, string | undefined>()
  for (const scope of scopes) {
    const root = containerOf(scope)
    roots.set(root, realOrUndefined(root))
  }
  return { scopes, files, roots }
}

/**
 * Puts the files back as they were: rewrites changed and deleted files, deletes new ones.
 * Never follows a symbolic link: links the task made are removed as links, links that
 * were there are restored as links, a directory the task replaced by a link becomes a
 * directory again, and nothing is written whose real path leaves its claim's directory.
 */
export function restoreSnapshot(snapshot: FileSnapshot): void {
  for (const file of filesInScope(snapshot.scopes)) {
    if (!snapshot.files.has(file)) rmSync(file, { force: true })
  }
  const refused: string[] = []
  for (const [file, saved] of snapshot.files) {
    const root = rootOf(snapshot, file)
    if (root === undefined || !makeRealDirs(root, dirname(file)) || !staysInside(root, snapshot.roots.get(root), dirname(file))) {
      refused.push(file)
      continue
    }
    const now = lstatOrUndefined(file)
    if (Buffer.isBuffer(saved)) {
      if (now?.isFile() && readFileSync(file).equals(saved)) continue
      if (now !== undefined) rmSync(file, { force: true, recursive: true })
      writeFileSync(file, saved, { flag: 'wx' })
    } else {
      if (now?.isSymbolicLink() && readlinkSync(file) === saved.link) continue
      if (now !== undefined) rmSync(file, { force: true, recursive: true })
      symlinkSync(saved.link, file)
    }
  }
  if (refused.length > 0) throw new Error(`refused to restore ${refused.join(', ')}: the path now leads outside the claimed directory`)
}

/** The directory a claim's files live in, which rollback may recreate but never leave. */
function containerOf(scope: ClaimScope): string {
  if (scope.matches !== undefined) return scope.root
  const stat = lstatOrUndefined(scope.root)
  return stat?.isDirectory() ? scope.root : dirname(scope.root)
}

function rootOf(snapshot: FileSnapshot, file: string): string | undefined {
  let best: string | undefined
  for (const root of snapshot.roots.keys()) {
    if ((file.startsWith(root + sep) || file === root) && (best === undefined || root.length > best.length)) best = root
  }
  return best
}

/** Makes every directory from `root` down to `dir` a real directory (a link there is replaced). */
function makeRealDirs(root: string, dir: string): boolean {
  const rel = relative(root, dir)
  if (rel.startsWith('..') || isAbsolute(rel)) return false
  let path = root
  for (const part of ['', ...rel.split(sep).filter(Boolean)]) {
    path = part === '' ? path : join(path, part)
    const stat = lstatOrUndefined(path)
    if (stat?.isDirectory()) continue
    // The claim's own directory is never replaced: a link there (not the task's to make) is refused.
    if (stat !== undefined && path === root) return false
    if (stat !== undefined) rmSync(path, { force: true })
    mkdirSync(path, { recursive: true })
  }
  return true
}

/** Whether `dir` (under `root`) really is where it was: `root`'s real path has not moved. */
function staysInside(root: string, realRootBefore: string | undefined, dir: string): boolean {
  const realRoot = realOrUndefined(root)
  if (realRoot === undefined) return false
  if (realRootBefore !== undefined && realRoot !== realRootBefore) return false
  return realOrUndefined(dir) === join(realRoot, relative(root, dir))
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}

function realOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path)
  } catch {
    return undefined
  }
}
