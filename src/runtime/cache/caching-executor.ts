import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { git, gitOk, tail } from '../workspace/git.ts'
import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor } from '../execution/executor.ts'
import { cacheKey, digestInputs } from './cache-key.ts'
import type { CacheEntry, CacheStore } from './cache-store.ts'

/** A cacheable task, as the cache sees it. */
export interface CacheTask {
  readonly definitionHash: string
  readonly inputs: readonly string[]
  /** Ids of its dependencies. */
  readonly deps: readonly string[]
  /** It runs in a worktree: its key is computed in the worktree, at the start of each attempt. */
  readonly worktree: boolean
}

/** One run's cacheable tasks. */
export interface RunCacheBinding {
  readonly store: CacheStore
  /** Task id → what its key is made of (plan tasks with `cache: true` only). */
  readonly tasks: ReadonlyMap<string, CacheTask>
  /** Take outputs from the cache (false: `--no-cache`, entries are still stored). */
  readonly read: boolean
  /** The plan's directory: `inputs` are relative to it (in a worktree task, to the same place in its worktree). */
  readonly baseDir: string
}

/** A task's key, and the entry stored under it (undefined: a miss, or reads are off). */
interface Lookup {
  readonly key: string
  readonly entry: CacheEntry | undefined
}

/**
 * Wraps an executor so that `cache: true` tasks whose key (definition, input files,
 * dependency outputs) has an entry are answered from it without running their agent; after
 * a successful attempt that added no tasks, its output is stored.
 *
 * When: a `workspace: none` task's key is computed and its entry read as soon as it is ready
 * (its dependencies completed: {@link prefetch}), so that a hit is known before admission and
 * the governor's fit gate lets it through without a CPU reservation ({@link isHit}). When
 * that was not possible (a dependency's output came from the journal), at the attempt's start.
 *
 * Worktree tasks: this executor sits inside the {@link WorkspaceExecutor}, and their key is
 * computed in the task's new worktree, where its dependencies' work is merged. A miss
 * records the change the agent made there as a binary diff; a hit applies that diff in the
 * new worktree, which the workspace executor then commits and merges like any attempt's
 * work (merge order, verify and claims unchanged). A diff that no longer applies is a miss.
 *
 * Cache errors never fail an attempt: the agent runs, and the error is logged on the attempt.
 */
export class CachingExecutor implements Executor {
  readonly #inner: Executor
  readonly #runs = new Map<string, RunCacheBinding>()
  /** Per attempt in this process (`runId\0taskId`): the entry it stored, until its task ends. */
  readonly #stored = new Map<string, { readonly store: CacheStore; readonly key: string }>()
  /** Per run: the plan directory's path inside its repository (`git rev-parse --show-prefix`). */
  readonly #prefixes = new Map<string, Promise<string>>()
  /** Per run: outputs of its tasks that succeeded here, by id (dependencies' outputs, for prefetches). */
  readonly #outputs = new Map<string, Map<string, unknown>>()
  /** `runId\0taskId` → the lookup made when the task became ready. */
  readonly #prefetched = new Map<string, Promise<Lookup | undefined>>()
  /** `runId\0taskId` of prefetched hits not started yet. */
  readonly #hits = new Set<string>()

  constructor(inner: Executor) {
    this.#inner = inner
  }

  get name(): string {
    return this.#inner.name
  }

  bind(runId: string, binding: RunCacheBinding): void {
    this.#runs.set(runId, binding)
    this.#outputs.set(runId, new Map())
  }

  /**
   * Removes what an attempt of task `taskId` stored in this run: the task did not complete with
   * it (its worktree's check, merge or verify failed, it was cancelled), so it is no result.
   */
  forget(runId: string, taskId: string): void {
    const id = `${runId}\0${taskId}`
    const stored = this.#stored.get(id)
    if (stored === undefined) return
    this.#stored.delete(id)
    stored.store.remove(stored.key).catch(() => undefined)
  }

  unbind(runId: string): void {
    for (const id of this.#stored.keys()) if (id.startsWith(`${runId}\0`)) this.#stored.delete(id)
    this.#runs.delete(runId)
    this.#prefixes.delete(runId)
    this.#outputs.delete(runId)
    const prefix = `${runId}\0`
    for (const id of this.#prefetched.keys()) if (id.startsWith(prefix)) this.#prefetched.delete(id)
    for (const id of this.#hits) if (id.startsWith(prefix)) this.#hits.delete(id)
  }

  /**
   * Task `taskId` of run `runId` is ready: for a cacheable `workspace: none` task whose
   * dependencies' outputs are known, computes its key and reads its entry now; `onHit` is
   * called when there is one.
   */
  prefetch(runId: string, taskId: string, onHit: () => void): void {
    const binding = this.#runs.get(runId)
    const task = binding?.tasks.get(taskId)
    const outputs = this.#outputs.get(runId)
    if (binding === undefined || task === undefined || outputs === undefined || !binding.read || task.worktree) return
    const dependencies: Record<string, unknown> = {}
    for (const dep of task.deps) {
      if (!outputs.has(dep)) return
      Object.defineProperty(dependencies, dep, { value: outputs.get(dep), enumerable: true, writable: true, configurable: true })
    }
    const id = `${runId}\0${taskId}`
    const lookup: Promise<Lookup | undefined> = this.#lookup(binding, task, binding.baseDir, dependencies, taskId).then(
      (found) => {
        if (found.entry !== undefined && this.#prefetched.get(id) === lookup) {
          this.#hits.add(id)
          onHit()
        }
        return found
      },
      () => undefined,
    )
    this.#prefetched.set(id, lookup)
  }

  /** Whether the task's entry was found when it became ready (it will use no CPU: no agent runs). */
  isHit(runId: string, taskId: string): boolean {
    // Asked of every ready task the governor looks at: no key built while there is no hit.
    return this.#hits.size > 0 && this.#hits.has(`${runId}\0${taskId}`)
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const binding = this.#runs.get(request.runId)
    if (binding === undefined) return this.#inner.start(request, listener)
    const task = binding.tasks.get(request.taskId)
    if (task === undefined) return this.#recorded(request, this.#inner.start(request, listener))
    if (request.repair !== undefined) {
      // The work this attempt stored failed its check, merge or verify: it is not a result to
      // reuse, and a repair always runs its agent (regression: a repair answered from the cache
      // re-applied the failing change until the repairs ran out).
      this.forget(request.runId, request.taskId)
      return this.#recorded(request, this.#inner.start(request, listener))
    }
    let inner: AttemptHandle | undefined
    let aborted = false
    const started = (handle: AttemptHandle) => {
      inner = handle
      if (aborted) handle.abort()
    }
    const result = this.#run(binding, task, request, listener, started, () => aborted)
    return this.#recorded(request, {
      result,
      abort: () => {
        aborted = true
        inner?.abort()
      },
    })
  }

  /** Keeps the output of a successful attempt, for its dependents' prefetches. */
  #recorded(request: AttemptRequest, handle: AttemptHandle): AttemptHandle {
    const result = handle.result.then((outcome) => {
      if (outcome.ok) this.#outputs.get(request.runId)?.set(request.taskId, outcome.output)
      return outcome
    })
    return { result, abort: () => handle.abort() }
  }

  async #run(
    binding: RunCacheBinding,
    task: CacheTask,
    request: AttemptRequest,
    listener: AttemptListener,
    started: (handle: AttemptHandle) => void,
    isAborted: () => boolean,
  ): Promise<AttemptResult> {
    const id = `${request.runId}\0${request.taskId}`
    const prefetched = this.#prefetched.get(id)
    this.#prefetched.delete(id)
    this.#hits.delete(id)
    let lookup = prefetched === undefined ? undefined : await prefetched
    if (lookup === undefined) {
      try {
        const workspace = request.workspace
        const root = workspace === undefined ? binding.baseDir : join(workspace, await this.#prefix(request.runId, binding.baseDir))
        lookup = await this.#lookup(binding, task, root, request.dependencies, request.taskId)
      } catch (error) {
        listener.onLog(`cache: not used for this attempt: ${(error as Error).message}`)
      }
    }
    if (lookup?.entry !== undefined) {
      const hit = await this.#hit(lookup, request, listener)
      if (hit !== undefined) return hit
    }
    if (isAborted()) {
      const message = `Attempt ${request.attempt} of task "${request.taskId}" was aborted before it started`
      return { ok: false, error: { code: 'ERR_CANCELLED', message } }
    }
    const key = lookup?.key
    const base = key !== undefined && request.workspace !== undefined ? await headOf(request.workspace) : undefined
    let spawned = false
    // Tasks it added are not replayed by a hit: such an attempt is not stored.
    const handle = this.#inner.start(request, {
      ...listener,
      onSpawn: (tasks, options) => {
        spawned = true
        return listener.onSpawn(tasks, options)
      },
    })
    started(handle)
    const result = await handle.result
    if (!result.ok || key === undefined || spawned || isAborted()) return result
    try {
      const patch = request.workspace === undefined ? undefined : await diffSince(request.workspace, base)
      const entry = { taskId: request.taskId, output: result.output, ...(patch === undefined ? {} : { patch }), storedAt: Date.now() }
      const stored = await binding.store.write(key, entry)
      if (stored) this.#stored.set(id, { store: binding.store, key })
      if (!stored) listener.onLog('cache: output not stored (it cannot be encoded, or it is larger than cache.maxBytes)')
    } catch (error) {
      listener.onLog(`cache: output not stored: ${(error as Error).message}`)
    }
    return result
  }

  /** The task's key under `root`, and its entry when reads are on. Throws when an input cannot be hashed. */
  async #lookup(
    binding: RunCacheBinding,
    task: CacheTask,
    root: string,
    dependencies: Readonly<Record<string, unknown>>,
    taskId: string,
  ): Promise<Lookup> {
    const key = cacheKey(task.definitionHash, await digestInputs(root, task.inputs, taskId), dependencies)
    const entry = binding.read ? await binding.store.read(key).catch(() => undefined) : undefined
    return { key, entry }
  }

  /** The cached answer, its diff applied in the worktree; undefined when the diff does not apply. */
  async #hit({ key, entry }: Lookup, request: AttemptRequest, listener: AttemptListener): Promise<AttemptResult | undefined> {
    if (entry === undefined) return undefined
    if (request.workspace !== undefined && entry.patch !== undefined && entry.patch !== '') {
      const problem = await applyPatch(request.workspace, entry.patch)
      if (problem !== undefined) {
        listener.onLog(`cache: the cached change of task "${request.taskId}" does not apply to its worktree (${problem}); running it`)
        return undefined
      }
    }
    listener.onLog(`cache: hit ${key.slice(0, 12)} (stored ${new Date(entry.storedAt).toISOString()}); the agent did not run`)
    return { ok: true, output: entry.output, cached: true }
  }

  #prefix(runId: string, baseDir: string): Promise<string> {
    let prefix = this.#prefixes.get(runId)
    if (prefix === undefined) {
      prefix = gitOk(baseDir, ['rev-parse', '--show-prefix']).then((out) => out.trim())
      this.#prefixes.set(runId, prefix)
    }
    return prefix
  }

  close(force?: boolean): Promise<void> {
    return this.#inner.close(force)
  }
}

async function headOf(worktree: string): Promise<string> {
  return (await gitOk(worktree, ['rev-parse', 'HEAD'])).trim()
}

/** Everything the agent changed in `worktree` since commit `base` (committed or not), as a binary diff. */
async function diffSince(worktree: string, base: string | undefined): Promise<string> {
  if (base === undefined) throw new Error('the worktree base is unknown')
  await gitOk(worktree, ['add', '-A'])
  const diff = await gitOk(worktree, ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', '--no-renames', base])
  // git's output lost its final newline on the way (stripFinalNewline); `git apply` needs it.
  return diff === '' ? '' : `${diff}\n`
}

/** Applies `patch` in `worktree` (all or nothing); the problem when it does not apply. */
async function applyPatch(worktree: string, patch: string): Promise<string | undefined> {
  const file = join(tmpdir(), `troupe-cache-${process.pid}-${randomUUID().slice(0, 8)}.patch`)
  try {
    await writeFile(file, patch)
    const applied = await git(worktree, ['apply', '--binary', '--index', '--whitespace=nowarn', file])
    return applied.exitCode === 0 ? undefined : tail(applied.stderr || applied.stdout, 300)
  } finally {
    await rm(file, { force: true })
  }
}
