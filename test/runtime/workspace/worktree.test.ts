import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isTroupeError } from '../../../src/runtime/core/errors.ts'
import { RunWorkspaces, refSafe, type WorkspaceOptions } from '../../../src/runtime/workspace/worktree.ts'
import { gitIn, tempRepo } from '../../helpers/git-repo.ts'

function open(repo: string, extra: Partial<WorkspaceOptions> = {}): Promise<RunWorkspaces> {
  return RunWorkspaces.open({ repoDir: repo, runId: 'r1', worktreesDir: join(repo, '.troupe', 'r1', 'worktrees'), integrationBranch: 'troupe/r1/integration', ...extra })
}

const branches = (repo: string) => gitIn(repo, 'branch', '--list', 'troupe/*', '--format=%(refname:short)').split('\n').filter(Boolean)
const worktrees = (repo: string) => gitIn(repo, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree ')).length

describe('RunWorkspaces', () => {
  it('merges parallel tasks into the integration branch, and a dependent sees its dependencies\' work', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const ws = await open(repo)
    const [a, b] = await Promise.all([ws.create('a'), ws.create('b')])
    writeFileSync(join(a.path, 'a.txt'), 'from a\n')
    writeFileSync(join(b.path, 'b.txt'), 'from b\n')
    await Promise.all([ws.finish('a'), ws.finish('b')])
    const c = await ws.create('c')
    expect(readFileSync(join(c.path, 'a.txt'), 'utf8')).toBe('from a\n')
    expect(readFileSync(join(c.path, 'b.txt'), 'utf8')).toBe('from b\n')
    writeFileSync(join(c.path, 'c.txt'), 'from c\n')
    const outcome = await ws.finish('c')
    expect(outcome.filesChanged).toBe(1)
    await ws.close()
    // One merge commit per task on the integration branch, the dependent's last.
    const merges = gitIn(repo, 'log', '--first-parent', '--format=%s', 'troupe/r1/integration').split('\n')
    expect(merges[0]).toBe('troupe: merge c')
    expect(merges.slice(1, 3).sort()).toEqual(['troupe: merge a', 'troupe: merge b'])
    expect(merges.at(-1)).toBe('initial')
    expect(gitIn(repo, 'show', 'troupe/r1/integration:c.txt')).toBe('from c')
    // The user's own working tree is untouched.
    expect(existsSync(join(repo, 'a.txt'))).toBe(false)
    expect(branches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktrees(repo)).toBe(1)
  })

  it('fails the second of two tasks that edit the same lines with ERR_MERGE_CONFLICT naming the file, leaving the integration branch as it was', async () => {
    const repo = tempRepo({ 'shared.txt': 'line\n', '.gitignore': '.troupe/\n' })
    const ws = await open(repo)
    const [x, y] = await Promise.all([ws.create('x'), ws.create('y')])
    writeFileSync(join(x.path, 'shared.txt'), 'x wrote this\n')
    writeFileSync(join(y.path, 'shared.txt'), 'y wrote this\n')
    await ws.finish('x')
    const head = await ws.integrationHead()
    const error = await ws.finish('y').catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_MERGE_CONFLICT')).toBe(true)
    expect((error as Error).message).toContain('shared.txt')
    expect(await ws.integrationHead()).toBe(head)
    expect(gitIn(repo, 'show', 'troupe/r1/integration:shared.txt')).toBe('x wrote this')
    await ws.close()
    expect(branches(repo)).toEqual(['troupe/r1/integration'])
  })

  it('does not keep a merge whose verify fails (ERR_VERIFY_FAILED with the output tail)', async () => {
    const repo = tempRepo({ 'README.md': 'ok\n', '.gitignore': '.troupe/\n' })
    const ws = await open(repo, { verify: 'test ! -e broken.txt || { echo "broken.txt must not exist"; exit 3; }' })
    const t = await ws.create('t')
    writeFileSync(join(t.path, 'broken.txt'), 'oops\n')
    const head = await ws.integrationHead()
    const error = await ws.finish('t').catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_VERIFY_FAILED')).toBe(true)
    expect((error as Error).message).toContain('broken.txt must not exist')
    expect(await ws.integrationHead()).toBe(head)
    await ws.close()
  })

  it('merges deletions, binary files and mode changes', async () => {
    const repo = tempRepo({ 'gone.txt': 'bye\n', 'script.sh': 'echo hi\n', '.gitignore': '.troupe/\n' })
    const ws = await open(repo)
    const t = await ws.create('t')
    rmSync(join(t.path, 'gone.txt'))
    writeFileSync(join(t.path, 'blob.bin'), Buffer.from([0, 255, 1, 254, 0, 0, 7]))
    chmodSync(join(t.path, 'script.sh'), 0o755)
    await ws.finish('t')
    await ws.close()
    const check = tempCheckout(repo)
    expect(existsSync(join(check, 'gone.txt'))).toBe(false)
    expect([...readFileSync(join(check, 'blob.bin'))]).toEqual([0, 255, 1, 254, 0, 0, 7])
    expect(statSync(join(check, 'script.sh')).mode & 0o111).not.toBe(0)
  })

  it('copies untracked files into each worktree and runs setup there', async () => {
    const repo = tempRepo({ '.gitignore': '.env\n.troupe/\n', 'README.md': 'x\n' })
    writeFileSync(join(repo, '.env'), 'SECRET=1\n')
    const ws = await open(repo, { copy: ['.env'], setup: 'echo ready > setup-ran.txt' })
    const t = await ws.create('t')
    expect(readFileSync(join(t.path, '.env'), 'utf8')).toBe('SECRET=1\n')
    expect(readFileSync(join(t.path, 'setup-ran.txt'), 'utf8')).toBe('ready\n')
    await ws.discard('t')
    await ws.close()
    expect(branches(repo)).toEqual(['troupe/r1/integration'])
  })

  it('removes task worktrees and branches a killed run left behind when the run opens again', async () => {
    const repo = tempRepo({ 'README.md': 'x\n', '.gitignore': '.troupe/\n' })
    const first = await open(repo)
    await first.create('left-behind')
    // No close: the process "died". A resumed run with the same id cleans up.
    const second = await open(repo)
    expect(branches(repo)).toEqual(['troupe/r1/integration'])
    await second.close()
    expect(worktrees(repo)).toBe(1)
  })

  it('gives hostile task ids a safe branch name', () => {
    expect(refSafe('build')).toBe('build')
    expect(refSafe('../../etc passwd')).toMatch(/^etc-passwd-[0-9a-f]{8}$/)
    expect(refSafe('a..b')).not.toContain('..')
    expect(refSafe('integration')).not.toBe('integration')
  })
})

function tempCheckout(repo: string): string {
  const dir = join(repo, '.troupe', 'check')
  gitIn(repo, 'worktree', 'add', '-q', dir, 'troupe/r1/integration')
  return dir
}

describe('cleanWorktrees', () => {
  it('removes task worktrees and branches of runs that are not running, and keeps integration branches and live runs', async () => {
    const { cleanWorktrees } = await import('../../../src/runtime/workspace/clean.ts')
    const repo = tempRepo({ 'README.md': 'x\n', '.gitignore': '.troupe/\n' })
    const dead = await RunWorkspaces.open({ repoDir: repo, runId: 'dead', worktreesDir: join(repo, '.troupe', 'dead', 'worktrees'), integrationBranch: 'troupe/dead/integration' })
    await dead.create('orphan')
    const live = await RunWorkspaces.open({ repoDir: repo, runId: 'live', worktreesDir: join(repo, '.troupe', 'live', 'worktrees'), integrationBranch: 'troupe/live/integration' })
    await live.create('busy')
    const report = await cleanWorktrees(repo, (runId) => runId === 'live')
    expect(report.branches).toEqual(['troupe/dead/orphan'])
    expect(branches(repo).sort()).toEqual(['troupe/dead/integration', 'troupe/live/busy', 'troupe/live/integration'])
    await live.close()
  })

  it('removes the integration worktree of a killed run whose integration branch is custom, and keeps the branch', async () => {
    const { cleanWorktrees } = await import('../../../src/runtime/workspace/clean.ts')
    const repo = tempRepo({ 'README.md': 'x\n', '.gitignore': '.troupe/\n' })
    await RunWorkspaces.open({ repoDir: repo, runId: 'dead', worktreesDir: join(repo, '.troupe', 'dead', 'worktrees'), integrationBranch: 'ai/dead' })
    await cleanWorktrees(repo, () => false)
    expect(worktrees(repo)).toBe(1)
    expect(gitIn(repo, 'branch', '--list', 'ai/*', '--format=%(refname:short)')).toBe('ai/dead')
  })

  it('creates and removes many worktrees at once (regression: a parallel `worktree add` read another\'s half-written .git/worktrees entry)', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const ws = await open(repo)
    const ids = Array.from({ length: 12 }, (_, i) => `t${i}`)
    await Promise.all(
      ids.map(async (id) => {
        const worktree = await ws.create(id)
        writeFileSync(join(worktree.path, `${id}.txt`), `${id}\n`)
        await ws.finish(id)
      }),
    )
    await ws.close()
    const files = gitIn(repo, 'ls-tree', '--name-only', 'troupe/r1/integration').split('\n')
    expect(files).toEqual(expect.arrayContaining(ids.map((id) => `${id}.txt`)))
    expect(branches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktrees(repo)).toBe(1)
  })
})
