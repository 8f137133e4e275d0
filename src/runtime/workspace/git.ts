import { TroupeError } from '../core/errors.ts'

/** The outcome of one git command. */
export interface GitResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** How troupe runs git. */
export interface GitOptions {
  /**
   * Run the repository's hooks (post-checkout, pre-merge-commit, post-merge, …): plan
   * `integration.hooks: true`. Off by default: a hook could hold a merge, or change it.
   * @default false
   */
  readonly hooks?: boolean
  /** Longest a git command may take; then it is killed and ERR_GIT_TIMEOUT thrown. @default 120000 */
  readonly timeoutMs?: number
}

export const GIT_TIMEOUT_MS = 120_000

/**
 * Runs git in `cwd` and returns its output, whatever the exit code. No shell, no pager, no
 * prompts, no hooks unless asked (`core.hooksPath=/dev/null`), a timeout (ERR_GIT_TIMEOUT),
 * a fixed locale so messages can be matched.
 */
export async function git(cwd: string, args: readonly string[], options: GitOptions = {}): Promise<GitResult> {
  if (!SERIAL.has(args[0] ?? '')) return run(cwd, args, options)
  // git's worktree bookkeeping is not safe under concurrent add/remove (one `worktree add`
  // reads another's half-written .git/worktrees/<name>): one at a time per repository here,
  // and a retry for another process doing the same.
  const turn = (queues.get(cwd) ?? Promise.resolve()).then(async () => {
    let result = await run(cwd, args, options)
    for (let retry = 1; retry <= 3 && result.exitCode !== 0 && /\.git\/worktrees\/|cannot lock ref/.test(result.stderr); retry++) {
      await new Promise((resolve) => setTimeout(resolve, 50 * retry))
      result = await run(cwd, args, options)
    }
    return result
  })
  queues.set(cwd, turn.catch(() => undefined))
  return turn
}

/** Commands that change or read the repository's worktree list and branches. */
const SERIAL = new Set(['worktree', 'branch'])
const queues = new Map<string, Promise<unknown>>()

async function run(cwd: string, args: readonly string[], options: GitOptions): Promise<GitResult> {
  const timeoutMs = options.timeoutMs ?? GIT_TIMEOUT_MS
  // Loaded on first use: a runtime without worktree tasks never loads execa.
  const { execa } = await import('execa')
  const subprocess = execa('git', options.hooks ? args : ['-c', 'core.hooksPath=/dev/null', ...args], {
    cwd,
    reject: false,
    stdin: 'ignore',
    env: { GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat', LC_ALL: 'C' },
    stripFinalNewline: true,
    // Its own group, so a timeout also stops what a hook started (and frees the pipes it holds).
    detached: true,
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    try {
      process.kill(-subprocess.pid!, 'SIGKILL')
    } catch {
      // the group is gone
    }
  }, timeoutMs)
  const result = await subprocess
  clearTimeout(timer)
  if (timedOut) {
    throw new TroupeError('ERR_GIT_TIMEOUT', `git ${args.join(' ')} in ${cwd} took longer than ${timeoutMs} ms and was killed${options.hooks ? ' (repository hooks are on: integration.hooks)' : ''}`)
  }
  return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr) }
}

/** Runs git and returns stdout; throws an Error with git's stderr when it fails. */
export async function gitOk(cwd: string, args: readonly string[], options: GitOptions = {}): Promise<string> {
  const result = await git(cwd, args, options)
  if (result.exitCode !== 0) throw new Error(`git ${args.join(' ')} failed (exit ${result.exitCode}): ${tail(result.stderr || result.stdout)}`)
  return result.stdout
}

/** The last `max` characters of a command's output, for error messages. */
export function tail(text: string, max = 2_000): string {
  const trimmed = text.trimEnd()
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed
}
