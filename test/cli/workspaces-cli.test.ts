import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { CLI_ENTRY, runCli } from '../helpers/cli.ts'
import { gitIn, tempRepo } from '../helpers/git-repo.ts'
import { completedIn, exited, until } from '../helpers/journal-file.ts'

const TSX = import.meta.resolve('tsx')
const agent = join(import.meta.dirname, '..', 'fixtures', 'agents', 'workspace-edit.mjs')

/** A repository holding a worktree plan: two chains of `length` tasks, each writing `<id>.txt`, then taking `ms`. */
function repoWithPlan(length: number, ms: number): { repo: string; plan: string; marks: string } {
  const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n*.marks\n' })
  writeFileSync(join(repo, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 } }))
  const marks = join(repo, 'run.marks')
  const tasks = ['a', 'b'].flatMap((chain) =>
    Array.from({ length }, (_, i) => ({
      id: `${chain}${i + 1}`,
      agent,
      input: { write: { [`${chain}${i + 1}.txt`]: `${chain}${i + 1}\n` }, sleepMs: ms, mark: marks },
      ...(i > 0 ? { dependsOn: [`${chain}${i}`] } : {}),
    })),
  )
  const plan = join(repo, 'plan.json')
  writeFileSync(plan, JSON.stringify({ name: 'ws', workspace: 'worktree', maxParallel: 2, tasks }))
  return { repo, plan, marks }
}

function start(repo: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], { cwd: repo, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' })
}

const branches = (repo: string) => gitIn(repo, 'branch', '--list', 'troupe/*', '--format=%(refname:short)').split('\n').filter(Boolean)
const worktreeCount = (repo: string) => gitIn(repo, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree ')).length
const taskWorktreesLive = (repo: string) => worktreeCount(repo) > 2

describe('troupe run with worktrees, killed with SIGKILL, then resumed', () => {
  it('reuses completed tasks\' merged work, re-runs none of them, and leaves no worktree or task branch', async () => {
    const { repo, plan, marks } = repoWithPlan(3, 400)
    const child = start(repo, ['run', plan, '--run-id', 'killed', '--quiet'])
    const exit = exited(child)
    await until(() => completedIn(repo, 'killed').length >= 2 && taskWorktreesLive(repo), 'two completed tasks and a running one', 30_000)
    child.kill('SIGKILL')
    expect(await exit).toBe('SIGKILL')
    const before = completedIn(repo, 'killed')
    expect(before.length).toBeLessThan(6)
    expect(worktreeCount(repo)).toBeGreaterThan(1)

    const again = await runCli(['run', plan, '--run-id', 'killed', '--json', '--quiet'], { cwd: repo })
    expect(again.code).toBe(0)
    const result = JSON.parse(again.stdout) as RunResult
    expect(result.totals).toMatchObject({ tasks: 6, completed: 6, reused: before.length })
    // No task that had completed started again.
    const starts = readFileSync(marks, 'utf8').split('\n').filter(Boolean)
    for (const id of before) expect(starts.filter((s) => s === id)).toHaveLength(1)
    const files = gitIn(repo, 'ls-tree', '--name-only', 'troupe/killed/integration').split('\n')
    expect(files).toEqual(expect.arrayContaining(['a1.txt', 'a2.txt', 'a3.txt', 'b1.txt', 'b2.txt', 'b3.txt']))
    expect(branches(repo)).toEqual(['troupe/killed/integration'])
    expect(worktreeCount(repo)).toBe(1)
    expect(readFileSync(join(repo, 'README.md'), 'utf8')).toBe('hello\n')
  })
})

describe('troupe clean', () => {
  it('removes the worktrees and task branches of a killed run, and keeps its integration branch', async () => {
    const { repo, plan } = repoWithPlan(2, 2_000)
    const child = start(repo, ['run', plan, '--run-id', 'dead', '--quiet'])
    const exit = exited(child)
    await until(() => taskWorktreesLive(repo), 'task worktrees', 30_000)
    child.kill('SIGKILL')
    await exit
    expect(branches(repo).length).toBeGreaterThan(1)

    const clean = await runCli(['clean'], { cwd: repo })
    expect(clean.code).toBe(0)
    expect(clean.stderr).toContain('deleted branch troupe/dead/a1')
    expect(branches(repo)).toEqual(['troupe/dead/integration'])
    expect(worktreeCount(repo)).toBe(1)
  })

  it('refuses a run that is still running with exit 2 and ERR_RUN_LOCKED, and leaves its worktrees alone', async () => {
    const { repo, plan } = repoWithPlan(1, 30_000)
    const child = start(repo, ['run', plan, '--run-id', 'live', '--quiet'])
    const exit = exited(child)
    try {
      await until(() => taskWorktreesLive(repo), 'task worktrees', 30_000)
      const refused = await runCli(['clean', '--run-id', 'live'], { cwd: repo })
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain('ERR_RUN_LOCKED')
      const all = await runCli(['clean'], { cwd: repo })
      expect(all.code).toBe(0)
      expect(branches(repo)).toEqual(['troupe/live/a1', 'troupe/live/b1', 'troupe/live/integration'])
    } finally {
      child.kill('SIGKILL')
      await exit
    }
  })

  it('cleans runs, not worktrees, outside a git repository (regression: it exited 2)', async () => {
    const result = await runCli(['clean'], { cwd: join(tempRepo(), '..') })
    expect(result.code).toBe(0)
    expect(result.stderr).toContain('not in a git repository, so no worktrees')
  })
})
