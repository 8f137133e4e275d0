
/** The outcome of one git command. */
export interface GitResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs git in `cwd` and returns its output, whatever the exit code. No shell, no pager, no
 * prompts, no user hooks' surprises on stdin; a fixed locale so messages can be matched.
 */
export async function git(cwd: string, args: readonly string[]): Promise<GitResult> {
  if (!SERIAL.has(args[0] ?? '')) return run(cwd, args)
  // git's worktree bookkeeping is not safe under concurrent add/remove (one `worktree add`
  // reads another's half-written .git/worktrees/<name>): one at a time per repository here,
  // and a retry for another process doing the same.
  const turn = (queues.get(cwd) ?? Promise.resolve()).then(async () => {
    let result = await run(cwd, args)
    for (let retry = 1; retry <= 3 && result.exitCode !== 0 && /\.git\/worktrees\/|cannot lock ref/.test(result.stderr); retry++) {
      await new Promise((resolve) => setTimeout(resolve, 50 * retry))
      result = await run(cwd, args)
    }
    return result
  })
  queues.set(cwd, turn.catch(() => undefined))
  return turn
}

/** Commands that change or read the repository's worktree list and branches. */
const SERIAL = new Set(['worktree', 'branch'])
const queues = new Map<string, Promise<unknown>>()

async function run(cwd: string, args: readonly string[]): Promise<GitResult> {
  // Loaded on first use: a runtime without worktree tasks never loads execa.
  const { execa } = await import('execa')
  const result = await execa('git', args, {
    cwd,
    reject: false,
    stdin: 'ignore',
    env: { GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat', LC_ALL: 'C' },
    stripFinalNewline: true,
  })
  return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr) }
}

/** Runs git and returns stdout; throws an Error with git's stderr when it fails. */
export async function gitOk(cwd: string, args: readonly string[]): Promise<string> {
  const result = await git(cwd, args)
  if (result.exitCode !== 0) throw new Error(`git ${args.join(' ')} failed (exit ${result.exitCode}): ${tail(result.stderr || result.stdout)}`)
  return result.stdout
}

/** The last `max` characters of a command's output, for error messages. */
export function tail(text: string, max = 2_000): string {
  const trimmed = text.trimEnd()
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed
}
