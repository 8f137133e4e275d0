import { createHash } from 'node:crypto'
import { TroupeError, describeValue } from '../core/errors.ts'
import { repairPolicy, type RepairPolicy, type RepairReason } from './repair-spec.ts'

export const WORKSPACE_MODES = ['none', 'worktree'] as const
/** Where a task works: in the plan's directory (`none`) or in a git worktree of its own. */
export type WorkspaceMode = (typeof WORKSPACE_MODES)[number]

/** A command: argv (no shell), or one string run by /bin/sh. */
export type StepCommand = string | readonly string[]

/** The workspace keys of a plan (docs/workspaces.md). */
export interface PlanWorkspaceFields {
  /** The default of every task. @default 'none' */
  readonly workspace?: WorkspaceMode
  readonly integration?: {
    /** Completed worktree tasks are merged here; `{{run.id}}` is the run's id. @default 'troupe/{{run.id}}/integration' */
    readonly branch?: string
    /** Must pass on the merged tree before a merge is kept. */
    readonly verify?: StepCommand
    /** Run the repository's git hooks (post-checkout, pre-merge-commit, post-merge, …) in worktrees and merges. @default false */
    readonly hooks?: boolean
  }
  /** Runs in each new worktree before its agent (e.g. `[npm, ci]`). */
  readonly setup?: StepCommand
  /** Untracked files copied into each worktree (e.g. `[.env]`), relative to the repository root. */
  readonly copy?: readonly string[]
}

/** The workspace keys of a task. */
export interface TaskWorkspaceFields {
  /** @default the plan's `workspace` */
  readonly workspace?: WorkspaceMode
  /**
   * Worktree tasks: when verify, the task's check or the merge fails, run the agent again in
   * its worktree, told what failed, up to `attempts` times (docs/workspaces.md "Repair").
   * @default the agent's `repair`, else none
   */
  readonly repair?: { readonly attempts: number; readonly on?: readonly RepairReason[] }
  /** Worktree tasks: a command run in the worktree after the agent and before the merge (ERR_CHECK_FAILED). */
  readonly check?: StepCommand
}

/** A plan's validated workspace settings; present only when some task uses a worktree. */
export interface PlanWorkspace {
  /** Ids of the tasks that run in a worktree. */
  readonly taskIds: ReadonlySet<string>
  /** Branch template; `{{run.id}}` is the only placeholder. */
  readonly integrationBranch: string | undefined
  readonly verify: StepCommand | undefined
  /** `integration.hooks`: git runs the repository's hooks. */
  readonly hooks: boolean
  readonly setup: StepCommand | undefined
  readonly copy: readonly string[]
  /** Worktree tasks with a repair policy (their own `repair`, else their agent's), by id. */
  readonly repairs: ReadonlyMap<string, RepairPolicy>
  /** Worktree tasks' `check` commands, by id. */
  readonly checks: ReadonlyMap<string, StepCommand>
}

/** The plan's top-level workspace keys. */
export const PLAN_WORKSPACE_KEYS = ['workspace', 'integration', 'setup', 'copy'] as const

/**
 * Validates the workspace keys of a plan and of its tasks (`tasks` as written; ids already
 * checked). Returns undefined when no task runs in a worktree. Pure: whether the plan's
 * directory is a git repository is checked when a run starts.
 */
export function parseWorkspaceSpec(plan: Record<string, unknown>, tasks: readonly unknown[]): PlanWorkspace | undefined {
  const fallback = mode(plan.workspace, 'workspace') ?? 'none'
  const taskIds = new Set<string>()
  // One task id → one branch and worktree: ids whose ref-safe forms meet are refused.
  const segments = new Map<string, string>()
  const repairs = new Map<string, RepairPolicy>()
  const checks = new Map<string, StepCommand>()
  const agents = typeof plan.agents === 'object' && plan.agents !== null ? (plan.agents as Record<string, unknown>) : {}
  tasks.forEach((raw, index) => {
    const task = raw as Record<string, unknown>
    const own = mode(task.workspace, `tasks[${index}] ("${String(task.id)}").workspace`)
    if ((own ?? fallback) !== 'worktree') {
      // Repairs rework a task's change before it is merged: without a worktree there is no change to rework.
      for (const key of ['repair', 'check'] as const) {
        if (task[key] === undefined) continue
        const allowed = 'no value: `repair` and `check` need `workspace: worktree` on the task or the plan'
        throw invalid(`tasks[${index}] ("${String(task.id)}").${key}`, task[key], allowed)
      }
      return
    }
    const id = String(task.id)
    const agent = Object.hasOwn(agents, String(task.agent)) ? agents[String(task.agent)] : undefined
    const repair = (task.repair ?? (typeof agent === 'object' && agent !== null ? (agent as Record<string, unknown>).repair : undefined)) as
      | { attempts: number; on?: readonly ('verify' | 'conflict' | 'check')[] }
      | undefined
    if (repair !== undefined) repairs.set(id, repairPolicy(repair))
    if (task.check !== undefined) checks.set(id, task.check as StepCommand)
    const segment = refSafe(id)
    const other = segments.get(segment)
    if (other !== undefined && other !== id) {
      throw new TroupeError(
        'ERR_PLAN_INVALID',
        `Tasks "${other}" and "${id}" would share the git branch troupe/<run>/${segment} and its worktree (task ids that are not plain names are made ref-safe as slug-hash); rename one of them`,
      )
    }
    segments.set(segment, id)
    taskIds.add(id)
  })
  const integration = parseIntegration(plan.integration)
  const setup = step(plan.setup, 'setup')
  const copy = parseCopy(plan.copy)
  if (taskIds.size === 0) return undefined
  const { branch: integrationBranch, verify, hooks } = integration
  return { taskIds, integrationBranch, verify, hooks, setup, copy, repairs, checks }
}

/** The integration branch of run `runId`: the template rendered, or undefined for the default. */
export function renderIntegrationBranch(template: string | undefined, runId: string): string | undefined {
  return template?.replace(RUN_ID, runId)
}

const RUN_ID = /\{\{\s*run\.id\s*\}\}/g

function parseIntegration(value: unknown): { branch: string | undefined; verify: StepCommand | undefined; hooks: boolean } {
  if (value === undefined) return { branch: undefined, verify: undefined, hooks: false }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('integration', value, 'an object with `branch`, `verify` and/or `hooks`')
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (key !== 'branch' && key !== 'verify' && key !== 'hooks') throw new TroupeError('ERR_PLAN_INVALID', `Plan field \`integration.${key}\` is not an integration key; allowed keys: branch, verify, hooks`)
  }
  if (record.hooks !== undefined && typeof record.hooks !== 'boolean') throw invalid('integration.hooks', record.hooks, 'true (run the repository\'s git hooks) or false (the default)')
  const branch = record.branch
  if (branch !== undefined) {
    const sample = typeof branch === 'string' ? branch.replace(RUN_ID, 'run') : ''
    if (typeof branch !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9._/-]*$/.test(sample) || /\.\.|\/\/|\/$|\.lock$|\/\./.test(sample)) {
      throw invalid('integration.branch', branch, 'a git branch name of letters, digits, ".", "_", "-" and "/", where `{{run.id}}` is the run id (e.g. "troupe/{{run.id}}/integration")')
    }
  }
  if (typeof branch === 'string') {
    // `troupe/<runId>/…` holds the task branches (which `troupe clean` deletes); `troupe/<runId>` cannot sit beside them in git.
    const rendered = branch.replace(RUN_ID, '\0')
    if (rendered === 'troupe/\0' || (rendered.startsWith('troupe/\0/') && rendered !== 'troupe/\0/integration')) {
      throw invalid('integration.branch', branch, 'a branch outside troupe/{{run.id}}/, which holds the task branches (git cannot hold troupe/{{run.id}} beside them); the default is troupe/{{run.id}}/integration')
    }
  }
  return { branch: branch as string | undefined, verify: step(record.verify, 'integration.verify'), hooks: record.hooks === true }
}

function parseCopy(value: unknown): readonly string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item.length === 0)) throw invalid('copy', value, 'an array of paths relative to the repository root')
  return value as string[]
}

function mode(value: unknown, field: string): WorkspaceMode | undefined {
  if (value === undefined) return undefined
  if (!WORKSPACE_MODES.includes(value as WorkspaceMode)) throw invalid(field, value, `one of ${WORKSPACE_MODES.map((m) => `"${m}"`).join(', ')}`)
  return value as WorkspaceMode
}

function step(value: unknown, field: string): StepCommand | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string' && value.trim().length > 0) return value
  if (Array.isArray(value) && value.length > 0 && value.every((arg) => typeof arg === 'string') && (value[0] as string).length > 0) return value as string[]
  throw invalid(field, value, 'a command: an argv array such as ["npm", "test"], or a non-empty string run by /bin/sh')
}

function invalid(field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Plan field \`${field}\` is ${describeValue(value)}; expected ${allowed}`)
}

const INTEGRATION = 'integration'

/**
 * A task id as one git ref component (its branch `troupe/<runId>/<segment>` and worktree
 * directory): kept when already safe, else a slug and a short hash. Two ids can meet here
 * (`a b` and `a-b-c8687a08`): plans with both are refused (parseWorkspaceSpec).
 */
export function refSafe(taskId: string): string {
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(taskId) && !taskId.includes('..') && !taskId.endsWith('.lock') && !taskId.endsWith('.') && taskId !== INTEGRATION) return taskId
  const slug = taskId.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'task'
  return `${slug}-${createHash('sha256').update(taskId).digest('hex').slice(0, 8)}`
}
