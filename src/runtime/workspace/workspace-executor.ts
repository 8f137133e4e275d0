import { stripVTControlCharacters } from 'node:util'
import {
  usageReports,
  type AttemptError,
  type AttemptHandle,
  type AttemptListener,
  type AttemptRepair,
  type AttemptRequest,
  type AttemptResult,
  type Executor,
  type SessionTotals,
} from '../execution/executor.ts'
import { isTroupeError, type ErrorCode } from '../core/errors.ts'
import type { RepairPolicy, RepairReason, RepairRecord } from '../plan/repair-spec.ts'
import type { StepCommand } from '../plan/workspace-spec.ts'
import { tail } from './git.ts'
import type { PortBlocks } from './ports.ts'
import type { TaskWorkspaceResult } from '../report/result.ts'
import type { MergeOutcome, RunWorkspaces } from './worktree.ts'

/** A run's worktrees and which of its tasks use one. */
export interface RunWorkspaceBinding {
  /** A promise while the repository is being prepared; attempts wait for it (and fail with its error). */
  readonly workspaces: RunWorkspaces | Promise<RunWorkspaces>
  readonly taskIds: ReadonlySet<string>
  /** Called once each attempt's worktree is merged or discarded, for the result and the dashboard. */
  readonly onMerged?: (taskId: string, outcome: TaskWorkspaceResult) => void
  /** Worktree tasks with a repair policy, by id (docs/workspaces.md "Repair"). */
  readonly repairs?: ReadonlyMap<string, RepairPolicy>
  /** Worktree tasks' `check` commands, by id. */
  readonly checks?: ReadonlyMap<string, StepCommand>
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
    const policy = binding.repairs?.get(request.taskId)
    const check = binding.checks?.get(request.taskId)
    const repairs: RepairRecord[] = []
    // Spend the last session held back for its result (a CLI's final totals): it goes with the
    // result this attempt ends with, or is reported before another session starts (the budget
    // then knows it when deciding on a repair).
    let late: AttemptResult['usage']
    const report = () => {
      for (const usage of usageReports(late)) listener.onUsage(usage)
      late = undefined
    }
    const withRepairs = (result: AttemptResult): AttemptResult => {
      const ended = late === undefined ? result : { ...result, usage: late }
      return repairs.length === 0 ? ended : { ...ended, repairs }
    }
    try {
      workspaces = await binding.workspaces
      const worktree = await workspaces.create(request.taskId)
      outcome = { branch: worktree.branch, filesChanged: 0, insertions: 0, deletions: 0, merge: 'discarded' }
      port = await this.#ports.take()
      if (isAborted()) return cancelled(request)
      listener.onLog(`workspace: ${worktree.path} on branch ${worktree.branch}, ports ${port}-${port + 9}`)
      let repair: AttemptRepair | undefined
      for (;;) {
        const attempt: AttemptRequest = { ...request, workspace: worktree.path, port, ...(repair === undefined ? {} : { repair }) }
        const handle = this.#inner.start(attempt, listener)
        started(handle)
        const result = await handle.result
        late = result.usage
        if (!result.ok && repair?.sessionId !== undefined && result.error.code === 'ERR_COMMAND_FAILED' && !isAborted()) {
          // The CLI exited without a result: most likely the session could not be resumed (its
          // files are gone). The repair goes on as a fresh session: the task's prompt, then the failure.
          const why = oneLine(result.error.message, 300)
          listener.onLog(`repair ${repair.number}: resuming session ${repair.sessionId} failed (${why}); starting a fresh session`)
          const { sessionId: _lost, sessionTotals: _spent, ...fresh } = repair
          repair = fresh
          report()
          continue
        }
        if (!result.ok) return withRepairs(result)
        // Aborted after the agent succeeded (cancel, timeout): its work is not merged.
        if (isAborted()) return withRepairs(cancelled(request))
        // approve: { before: "merge" }: the work waits for a person before its first check and
        // merge; rejected or aborted, it is not merged. Repairs after that are not held again.
        if (listener.awaitApproval !== undefined && repairs.length === 0) {
          const approved = await listener.awaitApproval({ workspace: worktree.path, branch: worktree.branch, output: result.output })
          if (!approved || isAborted()) return withRepairs(cancelled(request))
        }
        const checked = await this.#checkAndMerge(workspaces, request, listener, check, policy !== undefined, isAborted)
        if ('merged' in checked) {
          const { merged } = checked
          const { branch, filesChanged, insertions, deletions } = merged
          outcome = { branch, filesChanged, insertions, deletions, merge: 'merged' }
          return withRepairs(result)
        }
        const failure = checked
        if (failure.reason === 'conflict') outcome = { ...outcome, merge: 'conflict' }
        if (failure.reason === 'verify') outcome = { ...outcome, merge: 'verify-failed' }
        if (failure.reason === undefined || isAborted()) return withRepairs({ ok: false, error: failure.error })
        if (policy === undefined || !policy.on.includes(failure.reason) || repairs.length >= policy.attempts) {
          const spent = repairs.length > 0 ? ` (after ${repairs.length} repair${repairs.length === 1 ? '' : 's'})` : ''
          return withRepairs({ ok: false, error: { ...failure.error, message: `${failure.error.message}${spent}` } })
        }
        report()
        const refused = listener.mayRepair?.()
        if (refused !== undefined) {
          return withRepairs({ ok: false, error: { ...failure.error, message: `${failure.error.message}; not repaired: ${refused}` } })
        }
        repair = await this.#prepareRepair(workspaces, request, failure, repairs.length + 1, sessionOf(result.output))
        repairs.push({ attempt: request.attempt, reason: repair.reason, detail: repair.detail })
        listener.onLog(`repair ${repair.number} of ${policy.attempts} (${repair.reason}): ${oneLine(repair.detail, 300)}`)
        if (isAborted()) return withRepairs(cancelled(request))
      }
    } catch (error) {
      const message = `Workspace of task "${request.taskId}" failed: ${(error as Error).message}`
      return withRepairs({ ok: false, error: { code: isTroupeError(error) ? error.code : 'ERR_TASK_FAILED', message } })
    } finally {
      if (port !== undefined) this.#ports.give(port)
      await workspaces?.discard(request.taskId).catch(() => undefined)
      if (outcome !== undefined) binding.onMerged?.(request.taskId, outcome)
    }
  }

  /** Runs the task's check, then merges; answers what failed (a `reason` when a repair could answer it). */
  async #checkAndMerge(
    workspaces: RunWorkspaces,
    request: AttemptRequest,
    listener: AttemptListener,
    check: StepCommand | undefined,
    keep: boolean,
    isAborted: () => boolean,
  ): Promise<Failure | { readonly merged: MergeOutcome }> {
    try {
      if (check !== undefined) await workspaces.check(request.taskId, check, isAborted)
      // The merge is published only if the attempt is still not aborted once verify passed (see RunWorkspaces).
      const merged = await workspaces.finish(request.taskId, request.attempt, isAborted, keep)
      if (merged.alreadyMerged) listener.onLog(`workspace: ${request.taskId} was merged already (${merged.commit}); not merged again`)
      else listener.onLog(`workspace: merged ${merged.branch} (${merged.filesChanged} files, +${merged.insertions} −${merged.deletions})`)
      return { merged }
    } catch (error) {
      if (!isTroupeError(error)) throw error
      if (error.code === 'ERR_CANCELLED') return { reason: undefined, error: { code: 'ERR_CANCELLED', message: error.message } }
      const reason = REASON_OF[error.code]
      return { reason, error: { code: error.code, message: error.message, retryable: false } }
    }
  }

  /** Brings the worktree up to date (a conflict is left for the agent) and words the repair. */
  async #prepareRepair(
    workspaces: RunWorkspaces,
    request: AttemptRequest,
    failure: Failure,
    number: number,
    session: Pick<AttemptRepair, 'sessionId' | 'sessionTotals'>,
  ): Promise<AttemptRepair> {
    const { conflicts, hunks } = await workspaces.refresh(request.taskId)
    const reason: RepairReason = conflicts.length > 0 ? 'conflict' : failure.reason!
    // A verify or check failure whose rebase also conflicts: both, the failure first.
    const before = failure.reason === 'conflict' ? '' : `${failure.error.message}\n\n`
    const conflict = `${before}Conflicts in: ${conflicts.join(', ')}\n${tail(hunks, 6_000)}`
    const detail = clean(conflicts.length > 0 ? conflict : failure.error.message)
    return { number, reason, detail, prompt: repairPrompt(request.taskId, reason, detail), ...session }
  }

  close(force?: boolean): Promise<void> {
    return this.#inner.close(force)
  }
}

/** Why a check or merge failed; `reason` when a repair could answer it. */
interface Failure {
  readonly reason: RepairReason | undefined
  readonly error: AttemptError
}

const REASON_OF: Partial<Record<ErrorCode, RepairReason>> = {
  ERR_VERIFY_FAILED: 'verify',
  ERR_MERGE_CONFLICT: 'conflict',
  ERR_CHECK_FAILED: 'check',
}

/**
 * The CLI session an agent's output names (`output.sessionId` of claude-code, codex and gemini
 * agents), with the totals the CLI reported for it (`output.sessionTotals`: its numbers that are finite and >= 0).
 */
function sessionOf(output: unknown): Pick<AttemptRepair, 'sessionId' | 'sessionTotals'> {
  const o = output !== null && typeof output === 'object' ? (output as { sessionId?: unknown; sessionTotals?: unknown }) : {}
  const id = o.sessionId
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/.test(id)) return {}
  const t = o.sessionTotals !== null && typeof o.sessionTotals === 'object' ? (o.sessionTotals as Record<string, unknown>) : {}
  const fields = ['inputTokens', 'cachedInputTokens', 'outputTokens', 'costUsd'] as const
  const valid = fields.filter((key) => typeof t[key] === 'number' && Number.isFinite(t[key]) && t[key] >= 0)
  if (valid.length === 0) return { sessionId: id }
  const sessionTotals: SessionTotals = Object.fromEntries(valid.map((key) => [key, t[key]]))
  return { sessionId: id, sessionTotals }
}

/** Command output is hostile: no terminal escapes or control characters (tabs and line breaks kept). */
/**
 * A failure's text for the repair prompt and log: escape sequences and C0/C1 controls go; bidi
 * overrides stay, so the views can show them as `�` instead of dropping them unseen.
 */
function clean(text: string): string {
  return stripVTControlCharacters(text).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')
}

function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max)}…` : line
}

const WHAT_FAILED: Readonly<Record<RepairReason, string>> = {
  verify: 'the integration branch\'s verify command failed on the tree with your change merged',
  check: 'the task\'s check command failed on your change',
  conflict: 'the integration branch moved on while you worked; your change was rebased onto it and conflicts with it',
}

const HOW_TO_FIX: Readonly<Record<RepairReason, string>> = {
  verify: 'Fix your change so that the command passes.',
  check: 'Fix your change so that the command passes.',
  conflict:
    'Resolve the conflicts: edit the files so that both changes are kept as they should be, ' +
    'and remove every conflict marker (<<<<<<<, =======, >>>>>>>).',
}

/** The repair prompt: what failed, its output, what to do. Plain text; the CLI gets it on stdin. */
export function repairPrompt(taskId: string, reason: RepairReason, detail: string): string {
  return [
    `troupe: the work of task "${taskId}" was not merged: ${WHAT_FAILED[reason]}.`,
    '',
    detail,
    '',
    `${HOW_TO_FIX[reason]} Work in the current directory; troupe commits what you leave there and merges it again.`,
    'Do not run git commit, rebase or merge.',
  ].join('\n')
}

function cancelled(request: AttemptRequest): AttemptResult {
  const message = `Attempt ${request.attempt} of task "${request.taskId}" was aborted before its worktree was merged`
  return { ok: false, error: { code: 'ERR_CANCELLED', message } }
}
