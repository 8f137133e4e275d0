import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isTroupeError } from '../../../src/runtime/core/errors.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import { RunWorkspaces, type WorkspaceOptions } from '../../../src/runtime/workspace/worktree.ts'
import { gitIn, tempRepo } from '../../helpers/git-repo.ts'
import { mergeTrial } from '../../helpers/merge-trial.ts'

/** Issue 21 items 3 and 9, issue 22 item 5: merges tied to the task's outcome, exactly once; git hooks off; a timeout on git. */

const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'workspace-edit.mjs')

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function start(repo: string): Runtime {
  runtime = createRuntime({ config: { pool: { minThreads: 0, maxThreads: 2 }, governor: { enabled: false }, cancelGraceMs: 200, checkpoint: { dir: join(repo, '.troupe') } } })
  return runtime
}

function plan(tasks: Plan['tasks'], extra: Partial<Plan> = {}): Plan {
  return { name: 'merges', workspace: 'worktree', agents: { edit: agent }, tasks, ...extra } as Plan
}

function open(repo: string, extra: Partial<WorkspaceOptions> = {}): Promise<RunWorkspaces> {
  return RunWorkspaces.open({ repoDir: repo, runId: 'r1', worktreesDir: join(repo, '.troupe', 'r1', 'worktrees'), integrationBranch: 'troupe/r1/integration', ...extra })
}

/** Merge commits of task `id` on the integration branch (by their trailer). */
const mergesOf = (repo: string, branch: string, id: string) =>
  gitIn(repo, 'log', '--first-parent', '--merges', '--format=%B%x00', branch)
    .split('\0')
    .filter((body) => body.includes(`Troupe-Task: ${JSON.stringify(id)}`)).length

function hook(repo: string, name: string, script: string): void {
  mkdirSync(join(repo, '.git', 'hooks'), { recursive: true })
  const file = join(repo, '.git', 'hooks', name)
  writeFileSync(file, `#!/bin/sh\n${script}\n`)
  chmodSync(file, 0o755)
}

describe('a merge tied to the task outcome', () => {
  it('a timeout during verify fails the task and leaves the integration branch as it was (regression: FAILED with merge "merged")', { timeout: 60_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const before = gitIn(repo, 'rev-parse', 'HEAD')
    const result = await start(repo).run(
      plan([{ id: 'slow', agent: 'edit', timeoutMs: 3_000, retries: 0, input: { write: { 'slow.txt': 'x\n' } } }], { integration: { verify: 'sleep 30' } }),
      { runId: 'verify-timeout', baseDir: repo },
    ).result
    expect(result.tasks.slow!.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(result.tasks.slow!.workspace?.merge).not.toBe('merged')
    expect(gitIn(repo, 'rev-parse', 'troupe/verify-timeout/integration')).toBe(before)
  })

  it('with retries, only the attempt that passed verify is merged, once (regression: both attempts merged)', { timeout: 120_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    // The first verify outlives the attempt's timeout; the second passes at once.
    const verify = 'if [ -e ../../../../first-verify-done ]; then exit 0; fi; touch ../../../../first-verify-done; sleep 30'
    const result = await start(repo).run(
      plan([{ id: 't', agent: 'edit', timeoutMs: 10_000, retries: 1, input: { write: { 't.txt': 'x\n' } } }], { integration: { verify } }),
      { runId: 'retry', baseDir: repo },
    ).result
    expect(existsSync(join(repo, 'first-verify-done'))).toBe(true)
    expect(result.tasks.t!.state).toBe('COMPLETED')
    expect(result.tasks.t!.attempts).toBe(2)
    expect(mergesOf(repo, 'troupe/retry/integration', 't')).toBe(1)
  })

  it('does not merge a task again whose merge is on the integration branch already (a kill -9 after publishing)', async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const first = await open(repo)
    const a = await first.create('a')
    writeFileSync(join(a.path, 'a.txt'), 'one\n')
    await first.finish('a', 1)
    const head = await first.integrationHead()
    // A resumed invocation (new RunWorkspaces) runs task a again and tries to merge it.
    const second = await open(repo)
    const again = await second.create('a')
    writeFileSync(join(again.path, 'a.txt'), 'two\n')
    const outcome = await second.finish('a', 1)
    expect(outcome.alreadyMerged).toBe(true)
    expect(outcome.commit).toBe(head)
    expect(await second.integrationHead()).toBe(head)
    expect(mergesOf(repo, 'troupe/r1/integration', 'a')).toBe(1)
    await second.close()
  })

  it('an attempt aborted during verify never moves the integration branch', async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const ws = await open(repo, { verify: 'sleep 30' })
    const before = await ws.integrationHead()
    const t = await ws.create('t')
    writeFileSync(join(t.path, 't.txt'), 'x\n')
    let aborted = false
    setTimeout(() => (aborted = true), 500)
    const error = await ws.finish('t', 1, () => aborted).catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_CANCELLED')).toBe(true)
    expect(await ws.integrationHead()).toBe(before)
    await ws.close()
  })
})

describe('git safety', () => {
  it('runs no repository hook by default (regression: post-checkout and post-merge ran in worktrees)', async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    for (const name of ['post-checkout', 'post-merge', 'pre-merge-commit', 'reference-transaction']) hook(repo, name, `touch "${join(repo, `ran-${name}`)}"`)
    const ws = await open(repo)
    const t = await ws.create('t')
    writeFileSync(join(t.path, 't.txt'), 'x\n')
    await ws.finish('t', 1)
    await ws.close()
    for (const name of ['post-checkout', 'post-merge', 'pre-merge-commit', 'reference-transaction']) expect(existsSync(join(repo, `ran-${name}`)), name).toBe(false)
  })

  it('runs them with integration.hooks: true', async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    hook(repo, 'post-merge', `touch "${join(repo, 'ran-post-merge')}"`)
    const ws = await open(repo, { hooks: true })
    const t = await ws.create('t')
    writeFileSync(join(t.path, 't.txt'), 'x\n')
    await ws.finish('t', 1)
    await ws.close()
    expect(existsSync(join(repo, 'ran-post-merge'))).toBe(true)
  })

  it('kills a git command past its timeout with ERR_GIT_TIMEOUT, and the merge is not kept (regression: a post-merge hook held it)', { timeout: 60_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    hook(repo, 'post-merge', 'sleep 40')
    const ws = await open(repo, { hooks: true, gitTimeoutMs: 3_000 })
    const before = await ws.integrationHead()
    const t = await ws.create('t')
    writeFileSync(join(t.path, 't.txt'), 'x\n')
    const error = await ws.finish('t', 1).catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_GIT_TIMEOUT')).toBe(true)
    expect((error as Error).message).toMatch(/took longer than 3000 ms/)
    expect(await ws.integrationHead()).toBe(before)
    await ws.close()
  })

  it('refuses two task ids that map to one branch (regression: "a b" and "a-b-c8687a08" shared a worktree)', () => {
    const bad = plan([
      { id: 'a b', agent: 'edit' },
      { id: 'a-b-c8687a08', agent: 'edit' },
    ])
    expect(() => compilePlan(bad, { baseDir: '/tmp' })).toThrow(expect.objectContaining({ code: 'ERR_PLAN_INVALID', message: expect.stringContaining('"a b" and "a-b-c8687a08" would share the git branch') }))
  })

  it('refuses integration.hooks that is not a boolean', () => {
    expect(() => compilePlan(plan([{ id: 'a', agent: 'edit' }], { integration: { hooks: 'yes' } } as unknown as Partial<Plan>), { baseDir: '/tmp' })).toThrow(
      expect.objectContaining({ code: 'ERR_PLAN_INVALID', message: expect.stringContaining('`integration.hooks`') }),
    )
  })
})

describe('kill -9 during merge and verify, then resume', () => {
  // The 20-kill version is scripts/reliability/kill-merge.ts; here 3 kills keep the suite's time down.
  it('leaves each completed task merged exactly once and the failed task not at all', { timeout: 300_000 }, async () => {
    const trial = await mergeTrial(4, 3, 4_000)
    expect(trial.kills).toBeGreaterThan(0)
    expect(trial.states.bad).toBe('FAILED')
    expect(trial.merges.bad).toBe(0)
    for (const id of ['t0', 't1', 't2', 't3']) {
      expect(trial.states[id], id).toBe('COMPLETED')
      expect(trial.merges[id], `merges of ${id}`).toBe(1)
    }
  })
})
