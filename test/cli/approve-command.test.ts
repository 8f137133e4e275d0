import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readJournal, summarize } from '../../src/runtime/journal/reader.ts'
import { CLI_ENTRY, runCli } from '../helpers/cli.ts'
import { gitIn, tempRepo } from '../helpers/git-repo.ts'

/** Issue 24 part 2: approval from another terminal (`troupe approve`), surviving kill -9 and resume. */

const TSX = import.meta.resolve('tsx')
const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')

interface Child {
  readonly process: ChildProcess
  stderr: string
  readonly exit: Promise<number | null>
}

const children: Child[] = []
afterEach(() => {
  for (const child of children.splice(0))
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL')
})

/** `troupe run plan.json --run-id <runId> --quiet` in `repo`, its stderr collected. */
function troupeRun(repo: string, runId: string): Child {
  const proc = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', 'plan.json', '--run-id', runId, '--quiet'], {
    cwd: repo,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const child: Child = { process: proc, stderr: '', exit: new Promise((resolve) => proc.on('close', (code) => resolve(code))) }
  proc.stderr!.on('data', (chunk) => (child.stderr += chunk))
  children.push(child)
  return child
}

/** Resolves once `check` holds (polled); the test's own timeout bounds it. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 50))
}

/** Whether the journal of `runId` says `taskId` awaits approval (durably: on disk). */
function journaledAwaiting(repo: string, runId: string, taskId: string): boolean {
  const journal = readJournal(join(repo, '.troupe', runId, 'journal.jsonl'))
  return journal !== undefined && summarize(journal.records).awaiting.has(taskId)
}

function repoWithPlan(tasks: unknown[]): string {
  const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
  const plan = {
    name: 'gated',
    workspace: 'worktree',
    agents: { edit: join(agents, 'workspace-edit.mjs'), echo: join(agents, 'echo.mjs') },
    tasks,
  }
  writeFileSync(join(repo, 'plan.json'), JSON.stringify(plan))
  writeFileSync(join(repo, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 0, maxThreads: 2 } }))
  return repo
}

describe('troupe approve', () => {
  it('acceptance: kill -9 while a worktree task awaits approval, resume, approve from the CLI: the task completes and its merge lands', {
    timeout: 180_000,
  }, async () => {
    const repo = repoWithPlan([
      { id: 'gated', agent: 'edit', approve: true, input: { write: { 'g.txt': 'gated work\n' } } },
      { id: 'after', agent: 'echo', workspace: 'none', dependsOn: ['gated'] },
    ])
    const first = troupeRun(repo, 'acc')
    await until(() => journaledAwaiting(repo, 'acc', 'gated'))
    expect(first.stderr).toContain('task gated awaits approval before merge: troupe approve acc gated')
    first.process.kill('SIGKILL')
    expect(await first.exit).toBe(null)

    const runs = await runCli(['runs'], { cwd: repo })
    expect(runs.stdout).toMatch(/acc\s+interrupted, awaiting approval/)
    expect(runs.stderr).toContain('troupe approve acc gated')

    // A merge is approved for the work a person sees: with no live run there is none, and nothing is recorded.
    const early = await runCli(['approve', 'acc', 'gated'], { cwd: repo })
    expect(early.code).toBe(1)
    expect(early.stderr).toContain('run acc is not running, so nothing was recorded')

    const resumed = troupeRun(repo, 'acc')
    // The agent's work is new after the kill: it runs again, and waits again.
    await until(() => resumed.stderr.includes('awaits approval'))
    const approve = await runCli(['approve', 'acc', 'gated'], { cwd: repo })
    expect(approve.stderr).toContain('troupe: task gated of run acc approved')
    expect(approve.code).toBe(0)
    expect(await resumed.exit).toBe(0)
    expect(gitIn(repo, 'show', 'troupe/acc/integration:g.txt')).toBe('gated work')
  })

  it('an approval given while the run is down applies once it is resumed (before start)', { timeout: 180_000 }, async () => {
    const repo = repoWithPlan([{ id: 'gated', agent: 'echo', workspace: 'none', approve: { before: 'start' } }])
    const first = troupeRun(repo, 'down')
    await until(() => journaledAwaiting(repo, 'down', 'gated'))
    first.process.kill('SIGKILL')
    await first.exit
    const approve = await runCli(['approve', 'down', 'gated'], { cwd: repo })
    expect(approve.code).toBe(0)
    expect(approve.stderr).toContain('Run down is not running')
    const resumed = troupeRun(repo, 'down')
    expect(await resumed.exit).toBe(0)
    const journal = summarize(readJournal(join(repo, '.troupe', 'down', 'journal.jsonl'))!.records)
    expect(journal.tasks.get('gated')!.state).toBe('COMPLETED')
    expect(journal.approvals.get('gated')).toMatchObject({ state: 'approved', by: 'cli' })
  })

  it('--reject fails the task with ERR_APPROVAL_REJECTED and the reason', { timeout: 120_000 }, async () => {
    const repo = repoWithPlan([{ id: 'gated', agent: 'echo', workspace: 'none', approve: true }])
    const run = troupeRun(repo, 'rej')
    await until(() => journaledAwaiting(repo, 'rej', 'gated'))
    const reject = await runCli(['approve', 'rej', 'gated', '--reject', 'do it with the new API instead'], { cwd: repo })
    expect(reject.stderr).toContain('troupe: task gated of run rej rejected')
    expect(await run.exit).toBe(1)
    const record = summarize(readJournal(join(repo, '.troupe', 'rej', 'journal.jsonl'))!.records).tasks.get('gated')!
    expect(record.error).toEqual({ code: 'ERR_APPROVAL_REJECTED', message: 'Task "gated" was rejected: do it with the new API instead' })
  })

  it('a run stopped while a task awaits approval says, after its summary, how to resume and approve', { timeout: 120_000 }, async () => {
    const repo = repoWithPlan([{ id: 'gated', agent: 'echo', workspace: 'none', approve: true }])
    const run = troupeRun(repo, 'stop')
    await until(() => journaledAwaiting(repo, 'stop', 'gated'))
    run.process.kill('SIGTERM')
    expect(await run.exit).toBe(130)
    expect(run.stderr).toContain(
      'troupe: task gated was awaiting approval; after `troupe run plan.json --run-id stop`: troupe approve stop gated',
    )
  })

  it('a missing task argument or a run id that is not one path segment exits 2', { timeout: 60_000 }, async () => {
    const repo = repoWithPlan([{ id: 'gated', agent: 'echo', workspace: 'none', approve: true }])
    const missing = await runCli(['approve', 'r1'], { cwd: repo })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("missing required argument 'taskId'")
    const outside = await runCli(['approve', '../x', 'gated'], { cwd: repo })
    expect(outside.code).toBe(2)
    expect(outside.stderr).toContain('Expected a run id of 1-128 letters')
  })

  it('an unknown run exits 2 naming it', { timeout: 60_000 }, async () => {
    const repo = repoWithPlan([{ id: 'gated', agent: 'echo', workspace: 'none', approve: true }])
    const result = await runCli(['approve', 'nope', 'gated'], { cwd: repo })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('No run "nope" in')
  })

  it('an unknown task and a task not awaiting approval exit 2 with their codes; the awaiting run stays up (regression: it exited 13, nothing keeping its process alive)', {
    timeout: 120_000,
  }, async () => {
    const repo = repoWithPlan([
      { id: 'gated', agent: 'echo', workspace: 'none', approve: true },
      { id: 'free', agent: 'echo', workspace: 'none' },
    ])
    const run = troupeRun(repo, 'codes')
    await until(() => journaledAwaiting(repo, 'codes', 'gated'))
    const unknown = await runCli(['approve', 'codes', 'ghost'], { cwd: repo })
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('Run "codes" has no task "ghost"')
    expect(unknown.stderr).toContain('[ERR_APPROVAL_UNKNOWN_TASK]')
    const free = await runCli(['approve', 'codes', 'free'], { cwd: repo })
    expect(free.code).toBe(2)
    expect(free.stderr).toContain('[ERR_APPROVAL_NOT_AWAITING]')
    await runCli(['approve', 'codes', 'gated'], { cwd: repo })
    expect(await run.exit).toBe(0)
  })
})
