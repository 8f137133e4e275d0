import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdir, rm } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { execa } from 'execa'
import { TroupeError } from '../core/errors.ts'
import { git, gitOk, tail } from './git.ts'
import { clearOwner, markOwner } from './run-liveness.ts'

/** How a run uses git worktrees (docs/workspaces.md). */
export interface WorkspaceOptions {
  /** A directory inside the repository (the plan's directory). */
  readonly repoDir: string
  readonly runId: string
  /** Where task worktrees go: `.troupe/<runId>/worktrees`, absolute. */
  readonly worktreesDir: string
  /** Completed tasks are merged here, one at a time. */
  readonly integrationBranch: string
  /** Must pass on the merged tree before a merge is kept (argv, or a string for /bin/sh). */
  readonly verify?: string | readonly string[]
  /** Runs in each new worktree before the agent (e.g. `npm ci`). */
  readonly setup?: string | readonly string[]
  /** Untracked files or directories (relative to the repository root) copied into each worktree. */
  readonly copy?: readonly string[]
  /** Keep worktrees and task branches after the run, for inspection. */
  readonly keep?: boolean
}

/** A task's worktree. */
export interface TaskWorktree {
  readonly taskId: string
  readonly path: string
  readonly branch: string
}

/** What merging a completed task's work did. */
export interface MergeOutcome {
  readonly branch: string
  /** The integration branch's commit after the merge (undefined when nothing changed). */
  readonly commit: string | undefined
  readonly filesChanged: number
  readonly insertions: number
  readonly deletions: number
}

/**
 * The worktrees of one run: one per worktree task, created from the integration branch as
 * it stands when the task starts, committed and merged back one at a time when the task
 * completes (so dependents, which start later, see their dependencies' work), removed
 * however the task ends. The user's own working tree is never touched.
 */
export class RunWorkspaces {
  readonly options: WorkspaceOptions
  readonly root: string
  readonly #integrationDir: string
  readonly #identity: readonly string[]
  readonly #live = new Map<string, TaskWorktree>()
  /** Tasks that had a worktree in this process: a retry's leftovers (with `keep`) are removed first. */
  readonly #created = new Set<string>()
  /** The integration commit each live worktree started from. */
  readonly #bases = new Map<string, string>()
  /** Merges run one at a time: each waits for the one before. */
  #mergeChain: Promise<unknown> = Promise.resolve()

  private constructor(options: WorkspaceOptions, root: string, identity: readonly string[]) {
    this.options = options
    this.root = root
    this.#integrationDir = join(options.worktreesDir, '.integration')
    this.#identity = identity
  }

  /**
   * Finds the repository, creates the integration branch from HEAD if it does not exist
   * (a resumed run keeps it, with its completed tasks' merged work), checks it out in a
   * worktree of its own, and removes this run's task worktrees and branches left by a
   * killed process.
   */
  static async open(options: WorkspaceOptions): Promise<RunWorkspaces> {
    const top = await git(options.repoDir, ['rev-parse', '--show-toplevel'])
    if (top.exitCode !== 0) {
      throw new TroupeError('ERR_PLAN_INVALID', `Plan uses \`workspace: worktree\`, but ${options.repoDir} is not inside a git repository (${tail(top.stderr, 200)})`)
    }
    const root = top.stdout.trim()
    const head = await git(root, ['rev-parse', '--verify', 'HEAD'])
    if (head.exitCode !== 0) throw new TroupeError('ERR_PLAN_INVALID', `Plan uses \`workspace: worktree\`, but the repository at ${root} has no commit yet`)
    const email = await git(root, ['config', 'user.email'])
    const identity = email.stdout.trim() === '' ? ['-c', 'user.name=troupe', '-c', 'user.email=troupe@localhost'] : []
    const workspaces = new RunWorkspaces(options, root, identity)
    await workspaces.#prepare()
    return workspaces
  }

  /** The integration branch's current commit. */
  async integrationHead(): Promise<string> {
    return (await gitOk(this.#integrationDir, ['rev-parse', 'HEAD'])).trim()
  }

  /** Creates the task's worktree on branch `troupe/<runId>/<task>` from the integration branch, copies files and runs setup. */
  async create(taskId: string): Promise<TaskWorktree> {
    const name = refSafe(taskId)
    const branch = `troupe/${this.options.runId}/${name}`
    const path = join(this.options.worktreesDir, name)
    // Stale ones of a killed run were removed by open(); only a retry (or a reused dir) needs this.
    if (this.#created.has(taskId) || existsSync(path)) await this.#removeTask(path, branch)
    this.#created.add(taskId)
    const base = await this.integrationHead()
    this.#bases.set(taskId, base)
    // Registered without files (worktree commands run one at a time), then checked out in
    // the new worktree alone, so parallel tasks populate their trees at the same time.
    await gitOk(this.root, ['worktree', 'add', '-q', '--no-checkout', '-b', branch, path, base])
    const worktree = { taskId, path, branch }
    this.#live.set(taskId, worktree)
    try {
      await gitOk(path, ['reset', '-q', '--hard'])
      for (const item of this.options.copy ?? []) await this.#copy(item, path)
      if (this.options.setup !== undefined) await runStep(this.options.setup, path, `setup of task "${taskId}"`)
    } catch (error) {
      await this.discard(taskId)
      throw error
    }
    return worktree
  }

  /**
   * Commits what the agent left uncommitted, then merges the task branch into the
   * integration branch (queued behind other merges), runs `verify` on the merged tree, and
   * removes the worktree. A conflict throws ERR_MERGE_CONFLICT naming the files; a failing
   * verify throws ERR_VERIFY_FAILED with its output's tail; either way the integration
   * branch is left exactly as it was.
   */
  async finish(taskId: string): Promise<MergeOutcome> {
    const worktree = this.#live.get(taskId)
    if (worktree === undefined) throw new Error(`task "${taskId}" has no worktree`)
    try {
      await gitOk(worktree.path, ['add', '-A'])
      const staged = await git(worktree.path, ['diff', '--cached', '--quiet'])
      if (staged.exitCode === 1) {
        await gitOk(worktree.path, [...this.#identity, 'commit', '-q', '--no-verify', '-m', `troupe: ${taskId}`, '-m', `Troupe-Run: ${this.options.runId}\nTroupe-Task: ${taskId}`])
      }
      // The task's own changes, measured in its worktree while other merges may be running.
      const base = this.#bases.get(taskId)!
      const stat = parseShortstat(await gitOk(worktree.path, ['diff', '--shortstat', base, 'HEAD']))
      const commits = stat[0] === 0 ? Number((await gitOk(worktree.path, ['rev-list', '--count', `${base}..HEAD`])).trim()) : 1
      const merged = this.#mergeChain.then(() => this.#merge(worktree, stat, commits))
      this.#mergeChain = merged.catch(() => undefined)
      return await merged
    } finally {
      await this.discard(taskId)
    }
  }

  /** Removes the task's worktree and branch (failed, cancelled, skipped tasks; after a merge). */
  async discard(taskId: string): Promise<void> {
    const worktree = this.#live.get(taskId)
    if (worktree === undefined) return
    this.#live.delete(taskId)
    if (this.options.keep) return
    await this.#removeTask(worktree.path, worktree.branch)
  }

  /** Removes every worktree the run still holds and the integration worktree (the integration branch stays). */
  async close(): Promise<void> {
    await this.#mergeChain
    for (const taskId of [...this.#live.keys()]) await this.discard(taskId)
    await git(this.root, ['worktree', 'remove', '--force', this.#integrationDir])
    await rm(this.#integrationDir, { recursive: true, force: true })
    await git(this.root, ['worktree', 'prune'])
    clearOwner(this.options.worktreesDir)
  }

  async #prepare(): Promise<void> {
    await mkdir(this.options.worktreesDir, { recursive: true })
    markOwner(this.options.worktreesDir)
    const branch = this.options.integrationBranch
    const exists = await git(this.root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])
    if (exists.exitCode !== 0) await gitOk(this.root, ['branch', branch, 'HEAD'])
    // Leftovers of a killed run with this id: its task worktrees and branches (never the integration branch).
    await git(this.root, ['worktree', 'prune'])
    for (const stale of await this.#runBranches()) await this.#removeTask(join(this.options.worktreesDir, stale.slice(`troupe/${this.options.runId}/`.length)), stale)
    await git(this.root, ['worktree', 'remove', '--force', this.#integrationDir])
    await rm(this.#integrationDir, { recursive: true, force: true })
    await git(this.root, ['worktree', 'prune'])
    await gitOk(this.root, ['worktree', 'add', '-q', this.#integrationDir, branch])
  }

  async #runBranches(): Promise<string[]> {
    const out = await gitOk(this.root, ['for-each-ref', '--format=%(refname:short)', `refs/heads/troupe/${this.options.runId}/`])
    return out.split('\n').filter((b) => b !== '' && b !== this.options.integrationBranch)
  }

  async #merge(worktree: TaskWorktree, [filesChanged, insertions, deletions]: [number, number, number], commits: number): Promise<MergeOutcome> {
    const dir = this.#integrationDir
    if (commits === 0) {
      return { branch: worktree.branch, commit: undefined, filesChanged, insertions, deletions }
    }
    const before = await this.integrationHead()
    const merge = await git(dir, [...this.#identity, 'merge', '--no-ff', '--no-edit', '-q', '-m', `troupe: merge ${worktree.taskId}`, worktree.branch])
    if (merge.exitCode !== 0) {
      const conflicted = (await git(dir, ['diff', '--name-only', '--diff-filter=U'])).stdout.split('\n').filter(Boolean)
      await git(dir, ['merge', '--abort'])
      await git(dir, ['reset', '-q', '--hard', before])
      const files = conflicted.length > 0 ? conflicted.join(', ') : tail(merge.stdout || merge.stderr, 500)
      throw new TroupeError('ERR_MERGE_CONFLICT', `Merging task "${worktree.taskId}" into ${this.options.integrationBranch} conflicts in: ${files}; the integration branch is unchanged`)
    }
    if (this.options.verify !== undefined) {
      try {
        await runStep(this.options.verify, dir, `verify after merging task "${worktree.taskId}"`)
      } catch (error) {
        await git(dir, ['reset', '-q', '--hard', before])
        throw new TroupeError('ERR_VERIFY_FAILED', `${(error as Error).message}; the merge of task "${worktree.taskId}" was not kept`, { cause: error })
      }
    }
    return { branch: worktree.branch, commit: await this.integrationHead(), filesChanged, insertions, deletions }
  }

  async #copy(item: string, path: string): Promise<void> {
    const source = resolve(this.root, item)
    const rel = relative(this.root, source)
    if (rel.startsWith('..') || isAbsolute(rel)) throw new TroupeError('ERR_PLAN_INVALID', `Plan field \`copy\` names ${JSON.stringify(item)}, which is outside the repository`)
    await cp(source, join(path, rel), { recursive: true, force: true, errorOnExist: false, verbatimSymlinks: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
  }

  async #removeTask(path: string, branch: string): Promise<void> {
    // Files first, outside git's one-at-a-time worktree commands; then git forgets the worktree.
    await rm(path, { recursive: true, force: true })
    await git(this.root, ['worktree', 'prune'])
    await git(this.root, ['branch', '-q', '-D', branch])
  }
}

/**
 * The default integration branch of a run. Not `troupe/<runId>` (the first design's): git
 * cannot hold a branch `troupe/<runId>` beside task branches `troupe/<runId>/<task>` (a ref
 * cannot be both a file and a directory), so it is a sibling of the task branches.
 */
export function defaultIntegrationBranch(runId: string): string {
  return `troupe/${runId}/${INTEGRATION}`
}

const INTEGRATION = 'integration'

/** A task id as one git ref component: kept when already safe, else a slug and a short hash. */
export function refSafe(taskId: string): string {
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(taskId) && !taskId.includes('..') && !taskId.endsWith('.lock') && !taskId.endsWith('.') && taskId !== INTEGRATION) return taskId
  const slug = taskId.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'task'
  return `${slug}-${createHash('sha256').update(taskId).digest('hex').slice(0, 8)}`
}

function parseShortstat(text: string): [number, number, number] {
  const number = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0)
  return [number(/(\d+) files? changed/), number(/(\d+) insertions?/), number(/(\d+) deletions?/)]
}

/** Runs a setup or verify step: argv without a shell, or a string through /bin/sh. Throws with the output's tail. */
async function runStep(step: string | readonly string[], cwd: string, what: string): Promise<void> {
  const [file, args] = typeof step === 'string' ? ['/bin/sh', ['-c', step]] : [step[0]!, step.slice(1)]
  const result = await execa(file, args, { cwd, reject: false, stdin: 'ignore', all: true, detached: true, forceKillAfterDelay: 2_000 })
  if (result.exitCode !== 0 || result.failed) {
    throw new Error(`${what} failed (${result.exitCode === undefined ? (result.signal ?? 'could not start') : `exit ${result.exitCode}`}): ${tail(String(result.all ?? ''), 1_500)}`)
  }
}
