import { existsSync } from 'node:fs'
import { cp, mkdir, readFile, rm } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { TroupeError } from '../core/errors.ts'
import { refSafe } from '../plan/workspace-spec.ts'
import { git, gitOk, tail, type GitOptions, type GitResult } from './git.ts'
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
  /** Run the repository's git hooks (plan `integration.hooks`). @default false */
  readonly hooks?: boolean
  /** Longest one git command may take (ERR_GIT_TIMEOUT). @default GIT_TIMEOUT_MS */
  readonly gitTimeoutMs?: number
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
  /** The task's merge was already on the integration branch (an earlier invocation published it before it was killed): nothing was merged again. */
  readonly alreadyMerged?: true
}

/**
 * The worktrees of one run: one per worktree task, created from the integration branch as
 * it stands when the task starts, committed and merged back one at a time when the task
 * completes (so dependents, which start later, see their dependencies' work), removed
 * however the task ends. The user's own working tree is never touched.
 *
 * Exactly-once merges: a merge is made on a candidate commit (the integration worktree is
 * always detached), `verify` runs on the candidate, and only then is the integration
 * branch moved to it, by compare-and-swap (`git update-ref NEW OLD`) — unless the attempt
 * was aborted meanwhile (timeout, cancel), in which case the branch never moves (or is
 * moved back). Each merge commit carries `Troupe-Run`, `Troupe-Task` and `Troupe-Attempt`
 * trailers: that commit is the merge record, atomic with the merge itself, and a task
 * whose merge is already on the branch (published just before a kill -9) is not merged again.
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
  /** Files a repair's rebase left conflicted, per task: they must be free of markers before the next merge. */
  readonly #conflicts = new Map<string, readonly string[]>()
  /** Merges run one at a time: each waits for the one before. */
  #mergeChain: Promise<unknown> = Promise.resolve()
  readonly #git: GitOptions
  /** Tasks of this run merged on the integration branch, by task id → merge commit (read from its trailers once, then kept). */
  #merged: Map<string, string> | undefined

  private constructor(options: WorkspaceOptions, root: string, identity: readonly string[]) {
    this.options = options
    this.root = root
    this.#integrationDir = join(options.worktreesDir, '.integration')
    this.#identity = identity
    this.#git = gitOptions(options)
  }

  /**
   * Finds the repository, creates the integration branch from HEAD if it does not exist
   * (a resumed run keeps it, with its completed tasks' merged work), checks it out in a
   * worktree of its own, and removes this run's task worktrees and branches left by a
   * killed process.
   */
  static async open(options: WorkspaceOptions): Promise<RunWorkspaces> {
    const top = await git(options.repoDir, ['rev-parse', '--show-toplevel'], gitOptions(options))
    if (top.exitCode !== 0) {
      throw new TroupeError('ERR_PLAN_INVALID', `Plan uses \`workspace: worktree\`, but ${options.repoDir} is not inside a git repository (${tail(top.stderr, 200)})`)
    }
    const root = top.stdout.trim()
    const head = await git(root, ['rev-parse', '--verify', 'HEAD'], gitOptions(options))
    if (head.exitCode !== 0) throw new TroupeError('ERR_PLAN_INVALID', `Plan uses \`workspace: worktree\`, but the repository at ${root} has no commit yet`)
    const email = await git(root, ['config', 'user.email'], gitOptions(options))
    const identity = email.stdout.trim() === '' ? ['-c', 'user.name=troupe', '-c', 'user.email=troupe@localhost'] : []
    const workspaces = new RunWorkspaces(options, root, identity)
    await workspaces.#prepare()
    return workspaces
  }

  /** The integration branch's current commit. */
  async integrationHead(): Promise<string> {
    return (await this.#ok(this.root, ['rev-parse', '--verify', `refs/heads/${this.options.integrationBranch}^{commit}`])).trim()
  }

  /** The merge commit of task `taskId` on the integration branch, if this run merged it (see the class comment). */
  async mergedCommit(taskId: string): Promise<string | undefined> {
    if (this.#merged === undefined) {
      const out = await this.#ok(this.root, ['log', '--first-parent', '--merges', '-F', `--grep=${RUN_TRAILER}: ${this.options.runId}`, '--format=%H%x00%B%x1e', `refs/heads/${this.options.integrationBranch}`])
      const merged = new Map<string, string>()
      for (const entry of out.split('\x1e')) {
        const [commit, body] = entry.trim().split('\0')
        if (commit === undefined || body === undefined || !body.split('\n').includes(`${RUN_TRAILER}: ${this.options.runId}`)) continue
        const task = body.split('\n').find((line) => line.startsWith(`${TASK_TRAILER}: `))
        if (task === undefined) continue
        try {
          const id = JSON.parse(task.slice(TASK_TRAILER.length + 2)) as unknown
          // Newest first: the first one found is the one on the branch now.
          if (typeof id === 'string' && !merged.has(id)) merged.set(id, commit)
        } catch {
          // not ours
        }
      }
      this.#merged = merged
    }
    return this.#merged.get(taskId)
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
    await this.#ok(this.root, ['worktree', 'add', '-q', '--no-checkout', '-b', branch, path, base])
    const worktree = { taskId, path, branch }
    this.#live.set(taskId, worktree)
    try {
      await this.#ok(path, ['reset', '-q', '--hard'])
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
   * branch is left exactly as it was. With `keepOnFailure` a failed finish keeps the
   * worktree, for a repair ({@link refresh}).
   */
  async finish(taskId: string, attempt = 1, isAborted: () => boolean = () => false, keepOnFailure = false): Promise<MergeOutcome> {
    const worktree = this.#live.get(taskId)
    if (worktree === undefined) throw new Error(`task "${taskId}" has no worktree`)
    let done = false
    try {
      await this.#unresolved(worktree)
      await this.#commitAll(worktree)
      // The task's own changes, measured in its worktree while other merges may be running.
      const base = this.#bases.get(taskId)!
      const stat = parseShortstat(await this.#ok(worktree.path, ['diff', '--shortstat', base, 'HEAD']))
      const commits = stat[0] === 0 ? Number((await this.#ok(worktree.path, ['rev-list', '--count', `${base}..HEAD`])).trim()) : 1
      const merged = this.#mergeChain.then(() => this.#merge(worktree, stat, commits, attempt, isAborted))
      this.#mergeChain = merged.catch(() => undefined)
      const outcome = await merged
      done = true
      return outcome
    } finally {
      if (done || !keepOnFailure) await this.discard(taskId)
    }
  }

  /** Runs the task's `check` in its worktree; throws ERR_CHECK_FAILED with the output's tail. */
  async check(taskId: string, step: string | readonly string[], isAborted: () => boolean = () => false): Promise<void> {
    const worktree = this.#live.get(taskId)
    if (worktree === undefined) throw new Error(`task "${taskId}" has no worktree`)
    try {
      await runStep(step, worktree.path, `check of task "${taskId}"`, isAborted)
    } catch (error) {
      throw new TroupeError('ERR_CHECK_FAILED', (error as Error).message, { cause: error })
    }
  }

  /**
   * Brings a kept worktree up to date for a repair: the task's work (committed first) is
   * rebased onto the integration branch's head as one commit (`reset --hard HEAD_OF_INTEGRATION`
   * + `merge --squash TASK`, a three-way merge against the task's base). A conflict is left in
   * the worktree, markers and all, for the agent to resolve: the files and the conflicted
   * hunks are returned, and {@link finish} refuses to merge while a marker is left in them.
   */
  async refresh(taskId: string): Promise<{ readonly conflicts: readonly string[]; readonly hunks: string }> {
    const worktree = this.#live.get(taskId)
    if (worktree === undefined) throw new Error(`task "${taskId}" has no worktree`)
    const pending = this.#conflicts.get(taskId)
    // Markers still there from the last refresh: the same conflict, as the files stand now.
    if (pending !== undefined) {
      return { conflicts: pending, hunks: (await this.#run(worktree.path, ['diff', 'HEAD', '--', ...pending])).stdout }
    }
    await this.#commitAll(worktree)
    const head = await this.integrationHead()
    const base = this.#bases.get(taskId)
    if (head === base) return { conflicts: [], hunks: '' }
    const work = (await this.#ok(worktree.path, ['rev-parse', 'HEAD'])).trim()
    await this.#ok(worktree.path, ['reset', '-q', '--hard', head])
    this.#bases.set(taskId, head)
    const squash = await this.#run(worktree.path, ['merge', '--squash', '-q', work])
    const conflicts = (await this.#run(worktree.path, ['diff', '--name-only', '--diff-filter=U'])).stdout.split('\n').filter(Boolean)
    if (conflicts.length === 0) {
      if (squash.exitCode !== 0) {
        throw new Error(`git merge --squash in ${worktree.path} failed (exit ${squash.exitCode}): ${tail(squash.stderr || squash.stdout)}`)
      }
      await this.#commitAll(worktree)
      return { conflicts: [], hunks: '' }
    }
    this.#conflicts.set(taskId, conflicts)
    const hunks = (await this.#run(worktree.path, ['diff', '--diff-filter=U', '--', ...conflicts])).stdout
    return { conflicts, hunks }
  }

  /** Refuses to merge a worktree whose conflicted files (of {@link refresh}) still hold conflict markers. */
  async #unresolved(worktree: TaskWorktree): Promise<void> {
    const files = this.#conflicts.get(worktree.taskId)
    if (files === undefined) return
    const left: string[] = []
    for (const file of files) {
      const text = await readFile(join(worktree.path, file), 'utf8').catch(() => '')
      if (/^(<{7}|>{7})( |$)/m.test(text)) left.push(file)
    }
    if (left.length > 0) {
      const message = `Task "${worktree.taskId}" left conflict markers in: ${left.join(', ')}; the integration branch is unchanged`
      throw new TroupeError('ERR_MERGE_CONFLICT', message)
    }
    this.#conflicts.delete(worktree.taskId)
  }

  async #commitAll(worktree: TaskWorktree): Promise<void> {
    await this.#ok(worktree.path, ['add', '-A'])
    const staged = await this.#run(worktree.path, ['diff', '--cached', '--quiet'])
    if (staged.exitCode === 1) {
      await this.#ok(worktree.path, [...this.#identity, 'commit', '-q', '--no-verify', '-m', `troupe: ${worktree.taskId}`])
    }
  }

  /** Removes the task's worktree and branch (failed, cancelled, skipped tasks; after a merge). */
  async discard(taskId: string): Promise<void> {
    const worktree = this.#live.get(taskId)
    if (worktree === undefined) return
    this.#live.delete(taskId)
    this.#conflicts.delete(taskId)
    if (this.options.keep) return
    await this.#removeTask(worktree.path, worktree.branch)
  }

  /** Removes every worktree the run still holds and the integration worktree (the integration branch stays). */
  async close(): Promise<void> {
    await this.#mergeChain
    for (const taskId of [...this.#live.keys()]) await this.discard(taskId)
    await this.#run(this.root, ['worktree', 'remove', '--force', this.#integrationDir])
    await rm(this.#integrationDir, { recursive: true, force: true })
    await this.#run(this.root, ['worktree', 'prune'])
    clearOwner(this.options.worktreesDir)
  }

  async #prepare(): Promise<void> {
    await mkdir(this.options.worktreesDir, { recursive: true })
    markOwner(this.options.worktreesDir)
    const branch = this.options.integrationBranch
    const exists = await this.#run(this.root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])
    if (exists.exitCode !== 0) await this.#ok(this.root, ['branch', branch, 'HEAD'])
    // Leftovers of a killed run with this id: its task worktrees and branches (never the integration branch).
    await this.#run(this.root, ['worktree', 'prune'])
    for (const stale of await this.#runBranches()) await this.#removeTask(join(this.options.worktreesDir, stale.slice(`troupe/${this.options.runId}/`.length)), stale)
    await this.#run(this.root, ['worktree', 'remove', '--force', this.#integrationDir])
    await rm(this.#integrationDir, { recursive: true, force: true })
    await this.#run(this.root, ['worktree', 'prune'])
    await this.#ok(this.root, ['worktree', 'add', '-q', '--detach', this.#integrationDir, branch])
  }

  async #runBranches(): Promise<string[]> {
    const out = await this.#ok(this.root, ['for-each-ref', '--format=%(refname:short)', `refs/heads/troupe/${this.options.runId}/`])
    return out.split('\n').filter((b) => b !== '' && b !== this.options.integrationBranch)
  }

  async #merge(worktree: TaskWorktree, [filesChanged, insertions, deletions]: [number, number, number], commits: number, attempt: number, isAborted: () => boolean): Promise<MergeOutcome> {
    const dir = this.#integrationDir
    const { taskId } = worktree
    const done = await this.mergedCommit(taskId)
    if (done !== undefined) return { branch: worktree.branch, commit: done, filesChanged, insertions, deletions, alreadyMerged: true }
    if (commits === 0) {
      return { branch: worktree.branch, commit: undefined, filesChanged, insertions, deletions }
    }
    const before = await this.integrationHead()
    const ref = `refs/heads/${this.options.integrationBranch}`
    // The candidate: the merge on a detached HEAD at the integration branch's commit; the branch does not move yet.
    await this.#ok(dir, ['reset', '-q', '--hard', before])
    const trailers = `${RUN_TRAILER}: ${this.options.runId}\n${TASK_TRAILER}: ${JSON.stringify(taskId)}\n${ATTEMPT_TRAILER}: ${attempt}`
    const merge = await this.#run(dir, [...this.#identity, 'merge', '--no-ff', '--no-edit', '-q', '-m', `troupe: merge ${taskId}`, '-m', trailers, worktree.branch])
    if (merge.exitCode !== 0) {
      const conflicted = (await this.#run(dir, ['diff', '--name-only', '--diff-filter=U'])).stdout.split('\n').filter(Boolean)
      await this.#run(dir, ['merge', '--abort'])
      await this.#run(dir, ['reset', '-q', '--hard', before])
      const files = conflicted.length > 0 ? conflicted.join(', ') : tail(merge.stdout || merge.stderr, 500)
      throw new TroupeError('ERR_MERGE_CONFLICT', `Merging task "${taskId}" into ${this.options.integrationBranch} conflicts in: ${files}; the integration branch is unchanged`)
    }
    if (this.options.verify !== undefined) {
      try {
        await runStep(this.options.verify, dir, `verify after merging task "${taskId}"`, isAborted)
      } catch (error) {
        await this.#run(dir, ['reset', '-q', '--hard', before])
        if (isAborted()) throw notPublished(taskId, attempt)
        throw new TroupeError('ERR_VERIFY_FAILED', `${(error as Error).message}; the merge of task "${taskId}" was not kept`, { cause: error })
      }
    }
    const candidate = (await this.#ok(dir, ['rev-parse', 'HEAD'])).trim()
    if (isAborted()) {
      await this.#run(dir, ['reset', '-q', '--hard', before])
      throw notPublished(taskId, attempt)
    }
    // Publish: compare-and-swap, so a branch moved by anyone else meanwhile is never overwritten.
    await this.#ok(this.root, ['update-ref', '-m', `troupe: merge ${taskId}`, ref, candidate, before])
    if (isAborted()) {
      // Aborted while publishing: the attempt's outcome is not a success, so its merge is taken back.
      await this.#ok(this.root, ['update-ref', '-m', `troupe: undo merge of ${taskId} (attempt aborted)`, ref, before, candidate])
      await this.#run(dir, ['reset', '-q', '--hard', before])
      throw notPublished(taskId, attempt)
    }
    this.#merged?.set(taskId, candidate)
    return { branch: worktree.branch, commit: candidate, filesChanged, insertions, deletions }
  }

  #run(cwd: string, args: readonly string[]): Promise<GitResult> {
    return git(cwd, args, this.#git)
  }

  #ok(cwd: string, args: readonly string[]): Promise<string> {
    return gitOk(cwd, args, this.#git)
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
    await this.#run(this.root, ['worktree', 'prune'])
    await this.#run(this.root, ['branch', '-q', '-D', branch])
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
export { refSafe }
const RUN_TRAILER = 'Troupe-Run'
/** The task id as JSON: any id fits on one line. */
const TASK_TRAILER = 'Troupe-Task'
const ATTEMPT_TRAILER = 'Troupe-Attempt'

function gitOptions(options: WorkspaceOptions): GitOptions {
  return { hooks: options.hooks ?? false, ...(options.gitTimeoutMs === undefined ? {} : { timeoutMs: options.gitTimeoutMs }) }
}

function notPublished(taskId: string, attempt: number): TroupeError {
  return new TroupeError('ERR_CANCELLED', `Attempt ${attempt} of task "${taskId}" was aborted during its merge; the integration branch is unchanged`)
}

function parseShortstat(text: string): [number, number, number] {
  const number = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0)
  return [number(/(\d+) files? changed/), number(/(\d+) insertions?/), number(/(\d+) deletions?/)]
}

/** Runs a setup or verify step: argv without a shell, or a string through /bin/sh. Throws with the output's tail. */
async function runStep(step: string | readonly string[], cwd: string, what: string, isAborted: () => boolean = () => false): Promise<void> {
  const [file, args] = typeof step === 'string' ? ['/bin/sh', ['-c', step]] : [step[0]!, step.slice(1)]
  const { execa } = await import('execa')
  const subprocess = execa(file, args, { cwd, reject: false, stdin: 'ignore', all: true, detached: true, forceKillAfterDelay: 2_000 })
  // An aborted attempt's verify is not waited for: its group is killed.
  const watch = setInterval(() => {
    if (!isAborted()) return
    try {
      process.kill(-subprocess.pid!, 'SIGKILL')
    } catch {
      // gone
    }
  }, 100)
  const result = await subprocess.finally(() => clearInterval(watch))
  if (result.exitCode !== 0 || result.failed) {
    throw new Error(`${what} failed (${result.exitCode === undefined ? (result.signal ?? 'could not start') : `exit ${result.exitCode}`}): ${tail(String(result.all ?? ''), 1_500)}`)
  }
}
