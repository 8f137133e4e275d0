import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor } from '../execution/executor.ts'
import { isTroupeError } from '../core/errors.ts'
import type { PortBlocks } from './ports.ts'
import type { TaskWorkspaceResult } from '../report/result.ts'
import type { RunWorkspaces } from './worktree.ts'

/** A run's worktrees and which of its tasks use one. */
export interface RunWorkspaceBinding {
  /** A promise while the repository is being prepared; attempts wait for it (and fail with its error). */
  readonly workspaces: RunWorkspaces | Promise<RunWorkspaces>
  readonly taskIds: ReadonlySet<string>
  /** Called once each attempt's worktree is merged or discarded, for the result and the dashboard. */
  readonly onMerged?: (taskId: string, outcome: TaskWorkspaceResult) => void
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
    if (binding === undefined) return
    const workspaces = await Promise.resolve(binding.workspaces).catch(() => undefined)
    await workspaces?.close()
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
    let workspaces: RunWorkspaces | undefined
    let port: number | undefined
    let outcome: TaskWorkspaceResult | undefined
    try {
      workspaces = await binding.workspaces
      const worktree = await workspaces.create(request.taskId)
      outcome = { branch: worktree.branch, filesChanged: 0, insertions: 0, deletions: 0, merge: 'discarded' }
      port = await this.#ports.take()
      if (isAborted()) return cancelled(request)
      listener.onLog(`workspace: ${worktree.path} on branch ${worktree.branch}, ports ${port}-${port + 9}`)
      const handle = this.#inner.start({ ...request, workspace: worktree.path, port }, listener)
      started(handle)
      const result = await handle.result
      if (!result.ok) return result
      // Aborted after the agent succeeded (cancel, timeout): its work is not merged.
      if (isAborted()) return cancelled(request)
      // approve: { before: "merge" }: the work waits for a person; rejected or aborted, it is not merged.
      if (listener.awaitApproval !== undefined) {
        const approved = await listener.awaitApproval({ workspace: worktree.path, branch: worktree.branch, output: result.output })
        if (!approved || isAborted()) return cancelled(request)
      }
      try {
        // The merge is published only if the attempt is still not aborted once verify passed (see RunWorkspaces).
        const merged = await workspaces.finish(request.taskId, request.attempt, isAborted)
        outcome = { branch: merged.branch, filesChanged: merged.filesChanged, insertions: merged.insertions, deletions: merged.deletions, merge: 'merged' }
        if (merged.alreadyMerged) listener.onLog(`workspace: ${request.taskId} was merged already (${merged.commit}); not merged again`)
        else listener.onLog(`workspace: merged ${merged.branch} (${merged.filesChanged} files, +${merged.insertions} −${merged.deletions})`)
        return result
      } catch (error) {
        if (isTroupeError(error) && error.code === 'ERR_MERGE_CONFLICT') outcome = { ...outcome, merge: 'conflict' }
        if (isTroupeError(error) && error.code === 'ERR_VERIFY_FAILED') outcome = { ...outcome, merge: 'verify-failed' }
        if (isTroupeError(error) && error.code === 'ERR_CANCELLED') return { ok: false, error: { code: 'ERR_CANCELLED', message: error.message } }
        if (isTroupeError(error)) return { ok: false, error: { code: error.code, message: error.message, retryable: false } }
        throw error
      }
    } catch (error) {
      const message = `Workspace of task "${request.taskId}" failed: ${(error as Error).message}`
      return { ok: false, error: { code: isTroupeError(error) ? error.code : 'ERR_TASK_FAILED', message } }
    } finally {
      if (port !== undefined) this.#ports.give(port)
      await workspaces?.discard(request.taskId).catch(() => undefined)
      if (outcome !== undefined) binding.onMerged?.(request.taskId, outcome)
    }
  }

  close(force?: boolean): Promise<void> {
    return this.#inner.close(force)
  }
}

function cancelled(request: AttemptRequest): AttemptResult {
  const message = `Attempt ${request.attempt} of task "${request.taskId}" was aborted before its worktree was merged`
  return { ok: false, error: { code: 'ERR_CANCELLED', message } }
}
