import { appendFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { ApprovalEvent } from '../../src/runtime/report/events.ts'
import { APPROVALS_FILE, appendApprovalRequest } from '../../src/runtime/journal/approval-requests.ts'
import { readJournal, summarize } from '../../src/runtime/journal/reader.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import type { Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import type { Run } from '../../src/runtime/run.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { troupeErrorOf } from '../helpers/errors.ts'
import { gitIn, tempRepo } from '../helpers/git-repo.ts'

/** Issue 24 part 2: approval gates (docs/plans.md#approval-gates). */

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
const task = (id: string, name: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: join(agents, name), ...extra })
const edit = join(agents, 'workspace-edit.mjs')

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function start(maxParallel = 2, dir?: string): Runtime {
  runtime = createRuntime({
    config: {
      maxParallel,
      pool: { minThreads: 0, maxThreads: 2 },
      governor: { enabled: false },
      cancelGraceMs: 200,
      checkpoint: dir === undefined ? { enabled: false } : { dir: join(dir, '.troupe') },
    },
  })
  return runtime
}

/** Resolves once `taskId` of `run` awaits approval. */
function awaiting(run: Run, taskId: string): Promise<ApprovalEvent> {
  return new Promise((resolve) => {
    const listener = (event: ApprovalEvent) => {
      if (event.taskId !== taskId || event.state !== 'awaiting') return
      run.off('task:approval', listener)
      resolve(event)
    }
    run.on('task:approval', listener)
  })
}

describe('approve: before start', () => {
  it('holds the task in AWAITING_APPROVAL until run.approve, then runs it', async () => {
    const run = start().run({ tasks: [task('a', 'echo.mjs', { input: 1, approve: { before: 'start' } })] })
    const held = await awaiting(run, 'a')
    expect(held.before).toBe('start')
    expect(run.stateOf('a')).toBe('AWAITING_APPROVAL')
    expect(run.awaitingApproval().map((a) => a.taskId)).toEqual(['a'])
    run.approve('a')
    const result = await run.result
    expect(result.tasks.a!.state).toBe('COMPLETED')
    expect((result.tasks.a!.output as { input: unknown }).input).toBe(1)
  })

  it('approve: true on a task without a worktree means before start', async () => {
    const run = start().run({ tasks: [task('a', 'echo.mjs', { approve: true })] })
    expect((await awaiting(run, 'a')).before).toBe('start')
    run.approve('a')
    expect((await run.result).status).toBe('completed')
  })

  it('run.reject fails the task with ERR_APPROVAL_REJECTED carrying the sanitised reason; its dependents are skipped', async () => {
    const run = start().run({ tasks: [task('a', 'echo.mjs', { approve: true }), task('b', 'echo.mjs', { dependsOn: ['a'] })] })
    await awaiting(run, 'a')
    run.reject('a', 'use the v2 API\u001b[31m instead\u0007')
    const result = await run.result
    expect(result.tasks.a!.state).toBe('FAILED')
    expect(result.tasks.a!.attempts).toBe(0)
    expect(result.tasks.a!.error?.code).toBe('ERR_APPROVAL_REJECTED')
    expect(result.tasks.a!.error?.message).toBe('Task "a" was rejected: use the v2 API [31m instead')
    expect(result.tasks.b!.state).toBe('SKIPPED')
  })

  it('run.approve of a task the run does not have throws ERR_APPROVAL_UNKNOWN_TASK', async () => {
    const run = start().run({ tasks: [task('a', 'echo.mjs', { approve: true })] })
    await awaiting(run, 'a')
    expect(troupeErrorOf(() => run.approve('nope')).code).toBe('ERR_APPROVAL_UNKNOWN_TASK')
    await run.cancel()
  })

  it('run.approve of a task not awaiting approval throws ERR_APPROVAL_NOT_AWAITING naming its state', async () => {
    const run = start().run({ tasks: [task('a', 'echo.mjs', { approve: true }), task('b', 'echo.mjs', { dependsOn: ['a'] })] })
    await awaiting(run, 'a')
    const error = troupeErrorOf(() => run.reject('b', 'no'))
    expect(error.code).toBe('ERR_APPROVAL_NOT_AWAITING')
    expect(error.message).toBe('Task "b" is not awaiting approval: it is PENDING')
    await run.cancel()
  })

  it('cancelling the run ends a task awaiting approval CANCELLED', async () => {
    const run = start().run({ tasks: [task('a', 'echo.mjs', { approve: true })] })
    await awaiting(run, 'a')
    const result = await run.cancel('stop')
    expect(result.tasks.a!.state).toBe('CANCELLED')
    expect(result.tasks.a!.error?.code).toBe('ERR_CANCELLED')
  })

  it('holds no slot: with maxParallel 1, another task runs to completion while it awaits approval', async () => {
    const run = start(1).run({ tasks: [task('gate', 'echo.mjs', { approve: true }), task('other', 'sleep.mjs', { input: { ms: 20 } })] })
    await awaiting(run, 'gate')
    const other = new Promise<void>((resolve) => run.on('task:state', (e) => e.taskId === 'other' && e.state === 'COMPLETED' && resolve()))
    await other
    expect(run.stateOf('gate')).toBe('AWAITING_APPROVAL')
    run.approve('gate')
    expect((await run.result).status).toBe('completed')
  })

  it('its timeout does not tick while it awaits approval', async () => {
    const run = start().run({
      tasks: [
        task('gate', 'sleep.mjs', { approve: true, timeoutMs: 400, input: { ms: 10 } }),
        task('long', 'sleep.mjs', { input: { ms: 800 } }),
      ],
    })
    await awaiting(run, 'gate')
    // Longer than the gate's timeout passes while it waits.
    await new Promise<void>((resolve) => run.on('task:state', (e) => e.taskId === 'long' && e.state === 'COMPLETED' && resolve()))
    run.approve('gate')
    const result = await run.result
    expect(result.tasks.gate!.state).toBe('COMPLETED')
  })
})

describe('approve: before merge', () => {
  const plan = (tasks: Plan['tasks']): Plan => ({ name: 'gated', workspace: 'worktree', agents: { edit }, tasks }) as Plan

  it('approve: true in a worktree waits after the agent succeeded and merges once approved', { timeout: 60_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const run = start(2, repo).run(plan([{ id: 'w', agent: 'edit', approve: true, input: { write: { 'w.txt': 'work\n' } } }]), {
      runId: 'm1',
      baseDir: repo,
    })
    const held = await awaiting(run, 'w')
    expect(held.before).toBe('merge')
    const review = run.awaitingApproval()[0]!.review!
    expect(gitIn(review.workspace, 'status', '--porcelain')).toContain('w.txt')
    expect(gitIn(repo, 'ls-tree', '--name-only', 'troupe/m1/integration')).not.toContain('w.txt')
    run.approve('w')
    const result = await run.result
    expect(result.tasks.w!.state).toBe('COMPLETED')
    expect(result.tasks.w!.workspace?.merge).toBe('merged')
    expect(gitIn(repo, 'show', 'troupe/m1/integration:w.txt')).toBe('work')
  })

  it('a rejected merge fails the task with ERR_APPROVAL_REJECTED, keeps its work off the integration branch and removes its branch (regression: the branch outlived the run)', {
    timeout: 60_000,
  }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const run = start(2, repo).run(plan([{ id: 'w', agent: 'edit', approve: true, input: { write: { 'w.txt': 'work\n' } } }]), {
      runId: 'm2',
      baseDir: repo,
    })
    await awaiting(run, 'w')
    run.reject('w', 'wrong file')
    const result = await run.result
    expect(result.tasks.w!.state).toBe('FAILED')
    expect(result.tasks.w!.error?.code).toBe('ERR_APPROVAL_REJECTED')
    expect(result.tasks.w!.workspace?.merge).toBe('discarded')
    expect(gitIn(repo, 'worktree', 'list', '--porcelain')).not.toContain('/w\n')
    expect(gitIn(repo, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/troupe/m2/')).toBe('troupe/m2/integration')
    expect(gitIn(repo, 'ls-tree', '--name-only', 'troupe/m2/integration')).not.toContain('w.txt')
  })

  it('cancelling the run ends a task awaiting approval before merge CANCELLED, leaving no worktree or task branch', {
    timeout: 60_000,
  }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const spec = { id: 'w', agent: 'edit', approve: true, input: { write: { 'w.txt': 'work\n' } } }
    const run = start(2, repo).run(plan([spec]), { runId: 'm4', baseDir: repo })
    await awaiting(run, 'w')
    const result = await run.cancel('stop')
    expect(result.tasks.w!.state).toBe('CANCELLED')
    expect(gitIn(repo, 'worktree', 'list', '--porcelain')).not.toContain('/w\n')
    expect(gitIn(repo, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/troupe/m4/')).toBe('troupe/m4/integration')
    expect(gitIn(repo, 'ls-tree', '--name-only', 'troupe/m4/integration')).not.toContain('w.txt')
  })

  it('its attempt gives its slot back and its timeout stops while it awaits approval', { timeout: 60_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const run = start(1, repo).run(
      plan([
        { id: 'w', agent: 'edit', approve: true, timeoutMs: 2_000, input: { write: { 'w.txt': 'work\n' } } },
        { id: 'other', agent: 'edit', workspace: 'none', input: {} } as TaskSpec,
        { id: 'long', agent: join(agents, 'sleep.mjs'), workspace: 'none', input: { ms: 2_500 } } as TaskSpec,
      ]),
      { runId: 'm3', baseDir: repo },
    )
    await awaiting(run, 'w')
    await new Promise<void>((resolve) => run.on('task:state', (e) => e.taskId === 'long' && e.state === 'COMPLETED' && resolve()))
    run.approve('w')
    const result = await run.result
    expect(result.tasks.w!.state).toBe('COMPLETED')
    expect(result.tasks.long!.state).toBe('COMPLETED')
  })
})

describe('the request file (troupe approve, from another process)', () => {
  it('skips damaged and hostile lines and applies the valid request once, journaled with its id', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-requests-'))
    const run = start(2, dir).run({ tasks: [task('a', 'echo.mjs', { approve: true })] }, { runId: 'req' })
    await awaiting(run, 'a')
    const runDirectory = join(dir, '.troupe', 'req')
    appendFileSync(join(runDirectory, APPROVALS_FILE), '{"id":\n\u0000\u001b[2J\n{"id":"x","task":"a","decision":"explode","by":"cli"}\n')
    const request = appendApprovalRequest(runDirectory, { task: 'a', decision: 'approve', by: 'cli' })
    const result = await run.result
    expect(result.tasks.a!.state).toBe('COMPLETED')
    const journal = summarize(readJournal(join(runDirectory, 'journal.jsonl'))!.records)
    expect(journal.approvals.get('a')).toMatchObject({ state: 'approved', by: 'cli', request: request.id })
  })

  it('a resumed run skips a request an earlier invocation decided (the journal names it)', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-requests-'))
    const plan = { tasks: [task('a', 'echo.mjs', { approve: true })] }
    const first = start(2, dir).run(plan, { runId: 'again' })
    await awaiting(first, 'a')
    const runDirectory = join(dir, '.troupe', 'again')
    appendApprovalRequest(runDirectory, { task: 'a', decision: 'reject', by: 'cli' })
    expect((await first.result).tasks.a!.state).toBe('FAILED')
    const resumed = runtime!.run(plan, { runId: 'again' })
    await awaiting(resumed, 'a')
    // Read after the rejection in the same file: applied only if the rejection was skipped.
    appendApprovalRequest(runDirectory, { task: 'a', decision: 'approve', by: 'cli' })
    expect((await resumed.result).tasks.a!.state).toBe('COMPLETED')
  })
})

describe('invalid approve values', () => {
  const compile = (approve: unknown, extra: Partial<Plan> = {}) =>
    troupeErrorOf(() => compilePlan({ tasks: [{ id: 'a', agent: join(agents, 'echo.mjs'), approve } as TaskSpec], ...extra }))

  it('a string is refused naming the field and what is allowed', () => {
    const error = compile('yes')
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('tasks[0] ("a").approve')
    expect(error.message).toContain('true, false or { before: "start" | "merge" }')
  })

  it('an unknown before point is refused naming the allowed ones', () => {
    const error = compile({ before: 'deploy' })
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('"deploy"')
    expect(error.message).toContain('"start", "merge"')
  })

  it('before: merge on a task without a worktree is refused', () => {
    const error = compile({ before: 'merge' })
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toBe(
      'Invalid plan: `tasks[0] ("a").approve.before` is `"merge"` (string): expected "start" (only a task with `workspace: "worktree"` has a merge to approve)',
    )
  })
})
