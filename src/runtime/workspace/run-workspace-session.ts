import { execFileSync } from 'node:child_process'
import { dirname } from 'node:path'
import { TroupeError } from '../core/errors.ts'
import type { RunResult, TaskResult, TaskWorkspaceResult } from '../report/result.ts'
import type { PlanWorkspace } from '../plan/workspace-spec.ts'
import { renderIntegrationBranch } from '../plan/workspace-spec.ts'
import type { RunWorkspaceBinding } from './workspace-executor.ts'
import { otherHolder } from './run-liveness.ts'
import { RunWorkspaces, defaultIntegrationBranch } from './worktree.ts'

export interface WorkspaceSessionOptions {
  readonly spec: PlanWorkspace
  readonly runId: string
  /** The plan's directory: the repository is the one that holds it. */
  readonly repoDir: string
  /** `.troupe/<runId>/worktrees`, absolute. */
  readonly worktreesDir: string
  /** Keep task worktrees and branches after the run. @default false */
  readonly keep?: boolean
}

/**
 * One run's use of git worktrees, seen from the runtime: the binding for the
 * {@link WorkspaceExecutor}, and each task's merge outcome for the run's result.
 */
export class RunWorkspaceSession {
  readonly integrationBranch: string
  readonly binding: RunWorkspaceBinding
  readonly #outcomes = new Map<string, TaskWorkspaceResult>()

  /**
   * Checks (synchronously, so `runtime.run()` throws ERR_PLAN_INVALID at once) that the
   * plan's directory is in a git repository with a commit, then prepares the run's
   * integration branch and worktree directory in the background.
   */
  constructor(options: WorkspaceSessionOptions) {
    checkRepository(options.repoDir)
    const { spec, runId } = options
    // Opening removes the run's task worktrees: never while another process runs it.
    const holder = otherHolder(dirname(dirname(options.worktreesDir)), runId)
    if (holder !== undefined) {
      throw new TroupeError('ERR_RUN_LOCKED', `Run "${runId}" is running in process ${holder}, which uses its worktrees in ${options.worktreesDir}; wait for it to end, or choose another --run-id`)
    }
    this.integrationBranch = renderIntegrationBranch(spec.integrationBranch, runId) ?? defaultIntegrationBranch(runId)
    const workspaces = RunWorkspaces.open({
      repoDir: options.repoDir,
      runId,
      worktreesDir: options.worktreesDir,
      integrationBranch: this.integrationBranch,
      ...(spec.verify !== undefined ? { verify: spec.verify } : {}),
      ...(spec.setup !== undefined ? { setup: spec.setup } : {}),
      copy: spec.copy,
      keep: options.keep ?? false,
      hooks: spec.hooks,
    })
    // Attempts await it and report its error; this keeps an unawaited failure from being unhandled.
    workspaces.catch(() => undefined)
    this.binding = {
      workspaces,
      taskIds: spec.taskIds,
      onMerged: (taskId, outcome) => this.#outcomes.set(taskId, outcome),
      repairs: spec.repairs,
      checks: spec.checks,
    }
  }

  /** The run's result with each worktree task's `workspace` and the `integrationBranch`. */
  attach(result: RunResult): RunResult {
    const tasks: Record<string, TaskResult> = {}
    for (const [id, task] of Object.entries(result.tasks)) {
      const outcome = this.#outcomes.get(id)
      tasks[id] = outcome === undefined || task.reused ? task : { ...task, workspace: outcome }
    }
    return { ...result, tasks, integrationBranch: this.integrationBranch }
  }
}

function checkRepository(repoDir: string): void {
  const git = (args: string[]): string | undefined => {
    try {
      return execFileSync('git', args, { cwd: repoDir, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
    } catch {
      return undefined
    }
  }
  if (git(['rev-parse', '--show-toplevel']) === undefined) {
    throw new TroupeError('ERR_PLAN_INVALID', `Plan field \`workspace\` is "worktree", but the plan's directory ${repoDir} is not inside a git repository; run it from a git checkout or use \`workspace: none\``)
  }
  if (git(['rev-parse', '--verify', '--quiet', 'HEAD']) === undefined) {
    throw new TroupeError('ERR_PLAN_INVALID', `Plan field \`workspace\` is "worktree", but the git repository holding ${repoDir} has no commit yet; commit once, then run again`)
  }
}
