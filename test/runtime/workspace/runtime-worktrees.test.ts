import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'
import { gitIn, tempRepo } from '../../helpers/git-repo.ts'

const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'workspace-edit.mjs')

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function start(repo: string): Runtime {
  runtime = createRuntime({ config: { pool: { minThreads: 0, maxThreads: 3 }, governor: { enabled: false }, checkpoint: { dir: join(repo, '.troupe') } } })
  return runtime
}

const taskBranches = (repo: string) => gitIn(repo, 'branch', '--list', 'troupe/*', '--format=%(refname:short)').split('\n').filter(Boolean)
const worktreeCount = (repo: string) => gitIn(repo, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree ')).length

function plan(tasks: Plan['tasks'], extra: Partial<Plan> = {}): Plan {
  return { name: 'ws', workspace: 'worktree', agents: { edit: agent }, tasks, ...extra }
}

describe('runtime with workspace: worktree', () => {
  it('runs parallel tasks in their own worktrees, merges them, and a dependent sees its dependencies\' files', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(
      plan([
        { id: 'a', agent: 'edit', input: { write: { 'a.txt': 'from a\n' }, sleepMs: 200 } },
        { id: 'b', agent: 'edit', input: { write: { 'b.txt': 'from b\n' }, sleepMs: 200 } },
        { id: 'c', agent: 'edit', dependsOn: ['a', 'b'], input: { write: { 'c.txt': 'from c\n' }, read: ['a.txt', 'b.txt'] } },
      ]),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.status).toBe('completed')
    const c = result.tasks.c!.output as { seen: Record<string, string>; workspace: string; port: number }
    expect(c.seen).toEqual({ 'a.txt': 'from a\n', 'b.txt': 'from b\n' })
    expect(c.workspace).toBe(join(repo, '.troupe', 'r1', 'worktrees', 'c'))
    expect(result.integrationBranch).toBe('troupe/r1/integration')
    expect(result.tasks.a!.workspace).toEqual({ branch: 'troupe/r1/a', filesChanged: 1, insertions: 1, deletions: 0, merge: 'merged' })
    expect(gitIn(repo, 'show', 'troupe/r1/integration:c.txt')).toBe('from c')
    // a and b ran at the same time, each in its own worktree with its own ports.
    const a = result.tasks.a!
    const b = result.tasks.b!
    expect(a.startedAt! < b.finishedAt! && b.startedAt! < a.finishedAt!).toBe(true)
    const ports = ['a', 'b'].map((id) => (result.tasks[id]!.output as { port: number }).port)
    expect(new Set(ports).size).toBe(2)
  })

  it('leaves the user\'s working tree, branch and index untouched', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const head = gitIn(repo, 'rev-parse', 'HEAD')
    await start(repo).run(plan([{ id: 'a', agent: 'edit', input: { write: { 'README.md': 'changed\n', 'new.txt': 'x\n' } } }]), { runId: 'r1', baseDir: repo }).result
    expect(readFileSync(join(repo, 'README.md'), 'utf8')).toBe('hello\n')
    expect(existsSync(join(repo, 'new.txt'))).toBe(false)
    expect(gitIn(repo, 'rev-parse', 'HEAD')).toBe(head)
    expect(gitIn(repo, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('main')
    expect(gitIn(repo, 'status', '--porcelain')).toBe('')
  })

  it('fails the second of two tasks editing the same lines with ERR_MERGE_CONFLICT naming the file, and skips its dependents', async () => {
    const repo = tempRepo({ 'shared.txt': 'one\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(
      plan([
        { id: 'x', agent: 'edit', input: { write: { 'shared.txt': 'from x\n' } } },
        { id: 'y', agent: 'edit', input: { write: { 'shared.txt': 'from y\n' }, sleepMs: 300 } },
        { id: 'after-y', agent: 'edit', dependsOn: ['y'], input: {} },
      ]),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.status).toBe('failed')
    expect(result.tasks.x!.state).toBe('COMPLETED')
    expect(result.tasks.y!.state).toBe('FAILED')
    expect(result.tasks.y!.error?.code).toBe('ERR_MERGE_CONFLICT')
    expect(result.tasks.y!.error?.message).toContain('shared.txt')
    expect(result.tasks.y!.workspace?.merge).toBe('conflict')
    expect(result.tasks['after-y']!.state).toBe('SKIPPED')
    expect(gitIn(repo, 'show', 'troupe/r1/integration:shared.txt')).toBe('from x')
    expect(taskBranches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktreeCount(repo)).toBe(1)
  })

  it('fails a task whose merge does not pass verify with ERR_VERIFY_FAILED and keeps the integration branch as it was', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const before = gitIn(repo, 'rev-parse', 'HEAD')
    const result = await start(repo).run(
      plan([{ id: 'bad', agent: 'edit', input: { write: { 'broken.txt': 'x\n' } } }], { integration: { verify: 'test ! -e broken.txt' } }),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.tasks.bad!.state).toBe('FAILED')
    expect(result.tasks.bad!.error?.code).toBe('ERR_VERIFY_FAILED')
    expect(result.tasks.bad!.workspace?.merge).toBe('verify-failed')
    expect(gitIn(repo, 'rev-parse', 'troupe/r1/integration')).toBe(before)
  })

  it('removes a failed task\'s worktree and branch, and nothing of its work lands', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(plan([{ id: 'f', agent: 'edit', retries: 0, input: { write: { 'f.txt': 'x\n' }, fail: true } }]), { runId: 'r1', baseDir: repo }).result
    expect(result.tasks.f!.state).toBe('FAILED')
    expect(result.tasks.f!.workspace?.merge).toBe('discarded')
    expect(gitIn(repo, 'ls-tree', '--name-only', 'troupe/r1/integration')).not.toContain('f.txt')
    expect(taskBranches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktreeCount(repo)).toBe(1)
  })

  it('removes the worktrees of tasks cancelled mid-attempt', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const run = start(repo).run(plan([{ id: 'slow', agent: 'edit', input: { sleepMs: 30_000 } }, { id: 'next', agent: 'edit', dependsOn: ['slow'], input: {} }]), { runId: 'r1', baseDir: repo })
    run.on('task:state', (event) => {
      if (event.taskId === 'slow' && event.state === 'RUNNING') setTimeout(() => void run.cancel(), 300)
    })
    const result = await run.result
    expect(result.status).toBe('cancelled')
    expect(taskBranches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktreeCount(repo)).toBe(1)
  })

  it('keeps task worktrees and branches with keepWorktrees', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    await start(repo).run(plan([{ id: 'a', agent: 'edit', input: { write: { 'a.txt': 'a\n' } } }]), { runId: 'r1', baseDir: repo, keepWorktrees: true }).result
    expect(taskBranches(repo)).toEqual(['troupe/r1/a', 'troupe/r1/integration'])
    expect(existsSync(join(repo, '.troupe', 'r1', 'worktrees', 'a', 'a.txt'))).toBe(true)
  })

  it('runs only the tasks marked worktree in one, when the plan default is none', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const echo = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'echo.mjs')
    const result = await start(repo).run(
      { agents: { edit: agent, echo }, tasks: [{ id: 'w', agent: 'edit', workspace: 'worktree', input: {} }, { id: 'plain', agent: 'echo', input: 1 }] },
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.status).toBe('completed')
    expect(result.tasks.w!.workspace?.merge).toBe('merged')
    expect(result.tasks.plain!.workspace).toBeUndefined()
  })

  // Needs the process executor (command agents run with cwd = request.workspace), which is on
  // another branch: enable once `kind: command` runs in this runtime.
  it('runs three command tasks in their worktrees, and the one depending on two others sees their files', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(
      {
        workspace: 'worktree',
        agents: { sh: { kind: 'command', run: ['sh', '-c', '{{input.script}}'] } },
        tasks: [
          { id: 'a', agent: 'sh', input: { script: 'echo a > a.txt' } },
          { id: 'b', agent: 'sh', input: { script: 'echo b > b.txt' } },
          { id: 'c', agent: 'sh', dependsOn: ['a', 'b'], input: { script: 'cat a.txt b.txt > c.txt' } },
        ],
      },
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.status).toBe('completed')
    expect(gitIn(repo, 'show', 'troupe/r1/integration:c.txt')).toBe('a\nb')
    expect(existsSync(join(repo, 'c.txt'))).toBe(false)
  })

  it('refuses with ERR_RUN_LOCKED to open the worktrees of a run another live process holds', () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    mkdirSync(join(repo, '.troupe', 'r1', 'worktrees'), { recursive: true })
    // A live process that is not this one: the parent of this test worker.
    writeFileSync(join(repo, '.troupe', 'r1', 'worktrees', '.owner'), `${process.ppid}\n`)
    const error = troupeErrorOf(() => start(repo).run(plan([{ id: 'a', agent: 'edit', input: {} }]), { runId: 'r1', baseDir: repo }))
    expect(error.code).toBe('ERR_RUN_LOCKED')
    expect(error.message).toContain(`process ${process.ppid}`)
  })

  it('rejects a worktree plan outside a git repository with ERR_PLAN_INVALID', () => {
    const outside = mkdtempSync(join(tmpdir(), 'troupe-not-a-repo-'))
    const error = troupeErrorOf(() => start(outside).run(plan([{ id: 'a', agent: 'edit', input: {} }]), { runId: 'r1', baseDir: outside }))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain(`${outside} is not inside a git repository`)
  })
})
