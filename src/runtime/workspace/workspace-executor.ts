import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor } from '../execution/executor.ts'
import { isTroupeError } from '../core/errors.ts'
import type { PortBlocks } from './ports.ts'
import type { MergeOutcome, RunWorkspaces } from './worktree.ts'

/** A run's worktrees and which of its tasks use one. */
export interface RunWorkspaceBinding {
  readonly workspaces: RunWorkspaces
  readonly taskIds: ReadonlySet<string>
  /** Called after each merge attempt, for the result and the dashboard. */
  readonly onMerged?: (taskId: string, outcome: MergeOutcome | { readonly error: string }) => void
}

/**
 * Wraps an executor so worktree tasks run in their own git worktree: before the attempt,
 * the worktree is created from the integration branch and named in the request
 * (`workspace`, `port`); after a successful attempt, its work is committed and merged
 * (the task completes only once merged, so dependents start from a tree that holds it);
 * a failed, aborted or conflicting attempt's worktree is discarded. Other tasks pass through.
 */
export class WorkspaceExecutor implements Executor {
  readonly #inner: Executor
  readonly #ports: PortBlocks
  readonly #runs = new Map<string, RunWorkspaceBinding>()

  constructor(inner: Executor, ports: PortBlocks) {
    this.#inner = inner
    this.#ports = ports
  }

  get name(): string {
    return this.#inner.name
  }

  /** Routes the worktree tasks of run `runId` through `binding` until {@link unbind}. */
  bind(runId: string, binding: RunWorkspaceBinding): void {
    this.#runs.set(runId, binding)
  }

  /** Forgets run `runId` and removes the worktrees it still holds. */
  async unbind(runId: string): Promise<void> {
    const binding = this.#runs.get(runId)
    this.#runs.delete(runId)
    await binding?.workspaces.close()
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const binding = this.#runs.get(request.runId)
    if (binding === undefined || !binding.taskIds.has(request.taskId)) return this.#inner.start(request, listener)
    let inner: AttemptHandle | undefined
    let aborted = false
    const result = this.#run(binding, request, listener, (handle) => {
      inner = handle
      if (aborted) handle.abort()
    }, () => aborted)
    return {
      result,
      abort: () => {
        aborted = true
        inner?.abort()
      },
    }
  }

  async #run(
    binding: RunWorkspaceBinding,
    request: AttemptRequest,
    listener: AttemptListener,
    started: (handle: AttemptHandle) => void,
    isAborted: () => boolean,
  ): Promise<AttemptResult> {
    const { workspaces } = binding
    let port: number | undefined
    try {
      const worktree = await workspaces.create(request.taskId)
      port = await this.#ports.take()
      if (isAborted()) return cancelled(request)
      listener.onLog(`workspace: ${worktree.path} on branch ${worktree.branch}, ports ${port}-${port + 9}`)
      const handle = this.#inner.start({ ...request, workspace: worktree.path, port }, listener)
      started(handle)
      const result = await handle.result
      if (!result.ok || isAborted()) return result
      try {
        const outcome = await workspaces.finish(request.taskId)
        binding.onMerged?.(request.taskId, outcome)
        listener.onLog(`workspace: merged ${outcome.branch} (${outcome.filesChanged} files, +${outcome.insertions} −${outcome.deletions})`)
        return result
      } catch (error) {
        binding.onMerged?.(request.taskId, { error: (error as Error).message })
        if (isTroupeError(error)) return { ok: false, error: { code: error.code, message: error.message, retryable: false } }
        throw error
      }
    } catch (error) {
      const message = `Workspace of task "${request.taskId}" failed: ${(error as Error).message}`
      return { ok: false, error: { code: isTroupeError(error) ? error.code : 'ERR_TASK_FAILED', message } }
    } finally {
      if (port !== undefined) this.#ports.give(port)
      await workspaces.discard(request.taskId).catch(() => undefined)
    }
  }

  close(force?: boolean): Promise<void> {
    return this.#inner.close(force)
  }
}

function cancelled(request: AttemptRequest): AttemptResult {
  return { ok: false, error: { code: 'ERR_CANCELLED', message: `Attempt ${request.attempt} of task "${request.taskId}" was aborted while its worktree was prepared` } }
}
