import { rm } from 'node:fs/promises'
import { git, gitOk } from './git.ts'
import { defaultIntegrationBranch } from './worktree.ts'

/** What `troupe clean` removed from a repository. */
export interface CleanReport {
  readonly worktrees: readonly string[]
  readonly branches: readonly string[]
}

/**
 * Removes the task worktrees and task branches (`troupe/<runId>/<task>`) of runs that are not
 * running (`isLive(runId)` false) — the leftovers of killed runs that will not resume.
 * Integration branches stay: they hold merged work the user may want.
 */
export async function cleanWorktrees(repoDir: string, isLive: (runId: string) => boolean): Promise<CleanReport> {
  const root = (await gitOk(repoDir, ['rev-parse', '--show-toplevel'])).trim()
  const refs = (await gitOk(root, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/troupe/'])).split('\n').filter(Boolean)
  const { paths, detached } = await worktreesByBranch(root)
  const worktrees: string[] = []
  const branches: string[] = []
  for (const branch of refs) {
    const match = /^troupe\/([^/]+)\/(.+)$/.exec(branch)
    if (match === null || isLive(match[1]!) || branch === defaultIntegrationBranch(match[1]!)) continue
    const path = paths.get(branch)
    if (path !== undefined) {
      await git(root, ['worktree', 'remove', '--force', path])
      await rm(path, { recursive: true, force: true })
      worktrees.push(path)
    }
    if ((await git(root, ['branch', '-q', '-D', branch])).exitCode === 0) branches.push(branch)
  }
  // Integration worktrees of dead runs (`…/worktrees/.integration`), and records of deleted dirs.
  // A custom integration branch (plan `integration.branch`) is known by its worktree's path.
  // (Integration worktrees are detached since merges are published by compare-and-swap.)
  for (const [branch, path] of [...paths, ...detached.map((path) => ['', path] as const)]) {
    const match = /^troupe\/([^/]+)\/integration$/.exec(branch) ?? /\/([^/]+)\/worktrees\/\.integration$/.exec(path)
    if (match === null || isLive(match[1]!)) continue
    await git(root, ['worktree', 'remove', '--force', path])
    await rm(path, { recursive: true, force: true })
    worktrees.push(path)
  }
  await git(root, ['worktree', 'prune'])
  return { worktrees, branches }
}

async function worktreesByBranch(root: string): Promise<{ paths: Map<string, string>; detached: string[] }> {
  const out = await gitOk(root, ['worktree', 'list', '--porcelain'])
  const paths = new Map<string, string>()
  const detached: string[] = []
  let path: string | undefined
  for (const line of out.split('\n')) {
    if (line.startsWith('worktree ')) path = line.slice('worktree '.length)
    else if (line.startsWith('branch refs/heads/') && path !== undefined) paths.set(line.slice('branch refs/heads/'.length), path)
    else if (line === 'detached' && path !== undefined) detached.push(path)
  }
  return { paths, detached }
}
