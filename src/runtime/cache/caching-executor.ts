import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { git, gitOk, tail } from '../workspace/git.ts'
import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor } from '../execution/executor.ts'
import { cacheKey, digestInputs } from './cache-key.ts'
import type { CacheStore } from './cache-store.ts'

/** One run's cacheable tasks. */
export interface RunCacheBinding {
  readonly store: CacheStore
  /** Task id → its definition hash and `inputs` globs (plan tasks with `cache: true` only). */
  readonly tasks: ReadonlyMap<string, { readonly definitionHash: string; readonly inputs: readonly string[] }>
  /** Take outputs from the cache (false: `--no-cache`, entries are still stored). */
  readonly read: boolean
  /** The plan's directory: `inputs` are relative to it (in a worktree task, to the same place in its worktree). */
  readonly baseDir: string
}

/**
 * Wraps an executor so that `cache: true` tasks whose key (definition, input files,
 * dependency outputs) has an entry are answered from it without running their agent; after
 * a successful attempt that added no tasks, its output is stored. For a worktree task it sits
 * inside the {@link WorkspaceExecutor}: a miss records the change the agent made in its
 * worktree as a binary diff, and a hit applies that diff in the new worktree, which the
 * workspace executor then commits and merges like any attempt's work (merge order, verify
 * and claims unchanged). A diff that no longer applies is a miss. Cache errors never fail an
 * attempt: the agent runs, and the error is logged on the attempt.
 */
export class CachingExecutor implements Executor {
  readonly #inner: Executor
  readonly #runs = new Map<string, RunCacheBinding>()
  /** Per run: the plan directory's path inside its repository (`git rev-parse --show-prefix`). */
  readonly #prefixes = new Map<string, Promise<string>>()

  constructor(inner: Executor) {
    this.#inner = inner
  }

  get name(): string {
    return this.#inner.name
  }

  bind(runId: string, binding: RunCacheBinding): void {
    this.#runs.set(runId, binding)
  }

  unbind(runId: string): void {
    this.#runs.delete(runId)
    this.#prefixes.delete(runId)
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const binding = this.#runs.get(request.runId)
    const task = binding?.tasks.get(request.taskId)
    if (binding === undefined || task === undefined) return this.#inner.start(request, listener)
    let inner: AttemptHandle | undefined
    let aborted = false
    const started = (handle: AttemptHandle) => {
      inner = handle
      if (aborted) handle.abort()
    }
    const result = this.#run(binding, task, request, listener, started, () => aborted)
    return {
      result,
      abort: () => {
        aborted = true
        inner?.abort()
      },
    }
  }

  async #run(
    binding: RunCacheBinding,
    task: { readonly definitionHash: string; readonly inputs: readonly string[] },
    request: AttemptRequest,
    listener: AttemptListener,
    started: (handle: AttemptHandle) => void,
    isAborted: () => boolean,
  ): Promise<AttemptResult> {
    let key: string | undefined
    try {
      const workspace = request.workspace
      const root = workspace === undefined ? binding.baseDir : join(workspace, await this.#prefix(request.runId, binding.baseDir))
      key = cacheKey(task.definitionHash, await digestInputs(root, task.inputs, request.taskId), request.dependencies)
    } catch (error) {
      listener.onLog(`cache: not used for this attempt: ${(error as Error).message}`)
    }
    if (key !== undefined && binding.read) {
      const hit = await this.#hit(binding, key, request, listener)
      if (hit !== undefined) return hit
    }
    if (isAborted()) {
      const message = `Attempt ${request.attempt} of task "${request.taskId}" was aborted before it started`
      return { ok: false, error: { code: 'ERR_CANCELLED', message } }
    }
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
      if (!stored) listener.onLog('cache: output not stored (it cannot be encoded, or it is larger than cache.maxBytes)')
    } catch (error) {
      listener.onLog(`cache: output not stored: ${(error as Error).message}`)
    }
    return result
  }

  /** The cached answer for `key`, its diff applied in the worktree; undefined for a miss. */
  async #hit(
    binding: RunCacheBinding,
    key: string,
    request: AttemptRequest,
    listener: AttemptListener,
  ): Promise<AttemptResult | undefined> {
    const entry = await binding.store.read(key).catch(() => undefined)
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
