import { execa } from 'execa'

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
