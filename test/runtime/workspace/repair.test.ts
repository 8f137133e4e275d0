import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'
import { gitIn, tempRepo } from '../../helpers/git-repo.ts'

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function start(repo: string): Runtime {
  const config = { pool: { minThreads: 0, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { dir: join(repo, '.troupe') } }
  runtime = createRuntime({ config })
  return runtime
}

const taskBranches = (repo: string) => gitIn(repo, 'branch', '--list', 'troupe/*', '--format=%(refname:short)').split('\n').filter(Boolean)
const worktreeCount = (repo: string) =>
  gitIn(repo, 'worktree', 'list', '--porcelain')
    .split('\n')
    .filter((l) => l.startsWith('worktree ')).length

/** A command agent running `script` in /bin/sh (in its worktree). */
const sh = (script: string) => ({ kind: 'command', run: ['sh', '-c', script] })

function plan(agents: Record<string, unknown>, tasks: Plan['tasks'], extra: Record<string, unknown> = {}): Plan {
  return { name: 'repair', workspace: 'worktree', agents, tasks, ...extra } as Plan
}

// The first run writes work.txt; a repair (TROUPE_REPAIR set) also writes fixed.txt and keeps what it was told.
const FIX_ON_REPAIR =
  'echo work > work.txt; if [ -n "$TROUPE_REPAIR" ]; then echo fixed > fixed.txt; ' +
  'printf "%s|%s" "$TROUPE_REPAIR_REASON" "$TROUPE_REPAIR_DETAIL" > told.txt; fi'
const CHECK_FIXED = 'test -f fixed.txt || { echo "fixed.txt is missing"; exit 3; }'

describe('repair loops (worktree tasks, real git, real processes)', () => {
  it('a shell task whose check fails once is repaired in the same worktree and completes with one repair recorded', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(
      plan({ fix: sh(FIX_ON_REPAIR) }, [{ id: 't', agent: 'fix', retries: 0, check: CHECK_FIXED, repair: { attempts: 2 } }]),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.tasks.t!.state).toBe('COMPLETED')
    expect(result.tasks.t!.attempts).toBe(1)
    expect(result.tasks.t!.repairs).toHaveLength(1)
    expect(result.tasks.t!.repairs![0]).toMatchObject({ attempt: 1, reason: 'check' })
    expect(result.tasks.t!.repairs![0]!.detail).toContain('fixed.txt is missing')
    const told = gitIn(repo, 'show', 'troupe/r1/integration:told.txt')
    expect(told.startsWith('check|')).toBe(true)
    expect(told).toContain('fixed.txt is missing')
    expect(gitIn(repo, 'show', 'troupe/r1/integration:fixed.txt')).toBe('fixed')
    expect(result.tasks.t!.workspace?.merge).toBe('merged')
  })

  it('the task\'s final task:state event carries its repairs, so live views show them before the run ends', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const run = start(repo).run(
      plan({ fix: sh(FIX_ON_REPAIR) }, [{ id: 't', agent: 'fix', retries: 0, check: CHECK_FIXED, repair: { attempts: 2 } }]),
      { runId: 'r-live', baseDir: repo },
    )
    const ended: { state: string; repairs: unknown }[] = []
    run.on('task:state', (e) => {
      if (e.state === 'COMPLETED' || e.state === 'FAILED') ended.push({ state: e.state, repairs: e.repairs })
    })
    await run.result
    expect(ended).toHaveLength(1)
    expect(ended[0]).toMatchObject({ state: 'COMPLETED', repairs: [{ attempt: 1, reason: 'check' }] })
  })

  it('a repair budget of N exhausted fails with the last error code, N repairs recorded, nothing left behind', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(
      plan({ never: sh('echo try >> tries.txt') }, [
        { id: 't', agent: 'never', retries: 0, check: 'echo "still broken"; exit 1', repair: { attempts: 2 } },
      ]),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.tasks.t!.state).toBe('FAILED')
    expect(result.tasks.t!.error?.code).toBe('ERR_CHECK_FAILED')
    expect(result.tasks.t!.error?.message).toContain('still broken')
    expect(result.tasks.t!.error?.message).toContain('after 2 repairs')
    expect(result.tasks.t!.repairs?.map((r) => r.reason)).toEqual(['check', 'check'])
    expect(taskBranches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktreeCount(repo)).toBe(1)
    expect(gitIn(repo, 'rev-parse', 'troupe/r1/integration')).toBe(gitIn(repo, 'rev-parse', 'main'))
  })

  it('a failing check without `repair` fails the task with ERR_CHECK_FAILED and the output tail', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const check = ['sh', '-c', 'echo nope >&2; exit 4']
    const p = plan({ w: sh('echo x > x.txt') }, [{ id: 't', agent: 'w', retries: 0, check }])
    const result = await start(repo).run(p, { runId: 'r1', baseDir: repo }).result
    expect(result.tasks.t!.error?.code).toBe('ERR_CHECK_FAILED')
    expect(result.tasks.t!.error?.message).toMatch(/check of task "t" failed \(exit 4\): nope/)
    expect(result.tasks.t!.repairs).toBeUndefined()
  })

  it('a conflict is repaired after rebasing onto the integration branch: the agent resolves the markers, both changes merge', async () => {
    const repo = tempRepo({ 'shared.txt': 'one\n', '.gitignore': '.troupe/\n' })
    // y starts with x, writes later; on its repair it finds the conflict in shared.txt and keeps both lines.
    const y =
      'if [ "$TROUPE_REPAIR_REASON" = conflict ]; then grep -q "^<<<<<<<" shared.txt && printf "from x\\nfrom y\\n" > shared.txt; ' +
      'else sleep 0.5; echo "from y" > shared.txt; fi'
    const result = await start(repo).run(
      plan({ x: sh('echo "from x" > shared.txt'), y: sh(y) }, [
        { id: 'x', agent: 'x', retries: 0 },
        { id: 'y', agent: 'y', retries: 0, repair: { attempts: 1, on: ['conflict'] } },
      ]),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.tasks.x!.state).toBe('COMPLETED')
    expect(result.tasks.y!.state).toBe('COMPLETED')
    expect(result.tasks.y!.repairs).toHaveLength(1)
    expect(result.tasks.y!.repairs![0]!.reason).toBe('conflict')
    expect(result.tasks.y!.repairs![0]!.detail).toContain('Conflicts in: shared.txt')
    expect(result.tasks.y!.repairs![0]!.detail).toContain('<<<<<<<')
    expect(gitIn(repo, 'show', 'troupe/r1/integration:shared.txt')).toBe('from x\nfrom y')
    // y's change went in as one commit on top of x's merge (rebased), then merged.
    expect(gitIn(repo, 'log', '--first-parent', '--format=%s', 'troupe/r1/integration')).toBe('troupe: merge y\ntroupe: merge x\ninitial')
  })

  it('an agent that leaves conflict markers is not merged: ERR_MERGE_CONFLICT names the file once the repairs are spent', async () => {
    const repo = tempRepo({ 'shared.txt': 'one\n', '.gitignore': '.troupe/\n' })
    const y = 'if [ -z "$TROUPE_REPAIR" ]; then sleep 0.5; echo "from y" > shared.txt; fi'
    const result = await start(repo).run(
      plan({ x: sh('echo "from x" > shared.txt'), y: sh(y) }, [
        { id: 'x', agent: 'x', retries: 0 },
        { id: 'y', agent: 'y', retries: 0, repair: { attempts: 1 } },
      ]),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.tasks.y!.state).toBe('FAILED')
    expect(result.tasks.y!.error?.code).toBe('ERR_MERGE_CONFLICT')
    expect(result.tasks.y!.error?.message).toContain('left conflict markers in: shared.txt')
    expect(gitIn(repo, 'show', 'troupe/r1/integration:shared.txt')).toBe('from x')
    expect(taskBranches(repo)).toEqual(['troupe/r1/integration'])
  })

  it('a verify that fails once is repaired; a dependent starts from the repaired tree', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const result = await start(repo).run(
      plan(
        { fix: sh(FIX_ON_REPAIR) },
        [
          { id: 'a', agent: 'fix', retries: 0, repair: { attempts: 1, on: ['verify'] } },
          { id: 'b', agent: 'fix', retries: 0, dependsOn: ['a'], repair: { attempts: 1, on: ['verify'] } },
        ],
        { integration: { verify: CHECK_FIXED } },
      ),
      { runId: 'r1', baseDir: repo },
    ).result
    expect(result.tasks.a!.state).toBe('COMPLETED')
    expect(result.tasks.a!.repairs?.map((r) => r.reason)).toEqual(['verify'])
    expect(result.tasks.a!.repairs![0]!.detail).toContain('fixed.txt is missing')
    // b's tree holds a's fixed.txt, so verify passes at once: no repair.
    expect(result.tasks.b!.state).toBe('COMPLETED')
    expect(result.tasks.b!.repairs).toBeUndefined()
  })

  it('a failure whose reason is not in `on` is not repaired: ERR_VERIFY_FAILED at once', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const task = { id: 'a', agent: 'fix', retries: 0, repair: { attempts: 2, on: ['check' as const, 'conflict' as const] } }
    const p = plan({ fix: sh(FIX_ON_REPAIR) }, [task], { integration: { verify: CHECK_FIXED } })
    const result = await start(repo).run(p, { runId: 'r1', baseDir: repo }).result
    expect(result.tasks.a!.state).toBe('FAILED')
    expect(result.tasks.a!.error?.code).toBe('ERR_VERIFY_FAILED')
    expect(result.tasks.a!.repairs).toBeUndefined()
    expect(result.tasks.a!.workspace?.merge).toBe('verify-failed')
  })

  it('a module agent gets ctx.repair = { number, reason, detail } on its repair', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'repair-aware.mjs')
    const p = plan({ m: agent }, [{ id: 't', agent: 'm', retries: 0, check: CHECK_FIXED, repair: { attempts: 1 } }])
    const result = await start(repo).run(p, { runId: 'r1', baseDir: repo }).result
    expect(result.tasks.t!.state).toBe('COMPLETED')
    const told = (result.tasks.t!.output as { repair: { number: number; reason: string; detail: string } }).repair
    expect(told).toMatchObject({ number: 1, reason: 'check' })
    expect(told.detail).toContain('fixed.txt is missing')
  })

  it('repairs count against the budget: once it is spent, no further repair starts and the task fails with the last error', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'repair-aware.mjs')
    const pool = { minThreads: 0, maxThreads: 1 }
    runtime = createRuntime({ config: { pool, governor: { enabled: false }, budget: { maxCostUsd: 1.5 }, checkpoint: { enabled: false } } })
    const task = { id: 't', agent: 'm', retries: 0, input: { costUsd: 1 }, check: 'echo never; exit 1', repair: { attempts: 5 } }
    const result = await runtime.run(plan({ m: agent }, [task]), { runId: 'r1', baseDir: repo }).result
    expect(result.tasks.t!.state).toBe('FAILED')
    expect(result.tasks.t!.error?.code).toBe('ERR_CHECK_FAILED')
    expect(result.tasks.t!.error?.message).toContain('not repaired: the run is')
    // The first run ($1) and one repair ($1, which crossed $1.5); no third run.
    expect(result.tasks.t!.repairs).toHaveLength(1)
    expect(result.usage?.total.costUsd).toBe(2)
  })

  it('a timeout during a repair fails the task ERR_TASK_TIMEOUT with the repair recorded, and leaves no worktree or branch', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const slowRepair = sh('echo work > work.txt; if [ -n "$TROUPE_REPAIR" ]; then sleep 60; fi')
    const task = { id: 't', agent: 'slow', retries: 0, timeoutMs: 4_000, check: CHECK_FIXED, repair: { attempts: 3 } }
    const p = plan({ slow: slowRepair }, [task])
    const result = await start(repo).run(p, { runId: 'r1', baseDir: repo }).result
    expect(result.tasks.t!.state).toBe('FAILED')
    expect(result.tasks.t!.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(result.tasks.t!.repairs?.map((r) => r.reason)).toEqual(['check'])
    expect(taskBranches(repo)).toEqual(['troupe/r1/integration'])
    expect(worktreeCount(repo)).toBe(1)
  })

  it('resume keeps the repairs: the journal records them and the reused task lists them', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const p = plan({ fix: sh(FIX_ON_REPAIR) }, [{ id: 't', agent: 'fix', retries: 0, check: CHECK_FIXED, repair: { attempts: 1 } }])
    const first = await start(repo).run(p, { runId: 'r1', baseDir: repo }).result
    expect(first.tasks.t!.repairs).toHaveLength(1)
    const journal = readFileSync(join(repo, '.troupe', 'r1', 'journal.jsonl'), 'utf8')
    expect(journal).toContain('"repairs":[{"attempt":1,"reason":"check"')
    await runtime!.close()
    const again = await start(repo).run(p, { runId: 'r1', baseDir: repo }).result
    expect(again.tasks.t!.reused).toBe(true)
    expect(again.tasks.t!.repairs).toEqual(first.tasks.t!.repairs)
  })
})

describe('repair and check in a plan', () => {
  const repo = tempRepo({ 'README.md': 'hello\n' })
  const invalid = (task: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    troupeErrorOf(() => {
      const tasks = [{ id: 't', agent: 'w', ...task }] as Plan['tasks']
      return createRuntime({ config: { governor: { enabled: false } } }).run(plan({ w: sh('true') }, tasks, extra), { baseDir: repo })
    })

  it('refuses repair.attempts out of range, naming the field, the value and the range', () => {
    const error = invalid({ repair: { attempts: 0 } })
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('`tasks[0] ("t").repair.attempts` is `0`')
    expect(error.message).toContain('an integer from 1 to 20')
  })

  it('refuses an unknown reason in repair.on, listing the allowed ones', () => {
    const error = invalid({ repair: { attempts: 1, on: ['merge'] } })
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('`tasks[0] ("t").repair.on[0]` is `"merge"`')
    expect(error.message).toContain('"verify", "conflict", "check"')
  })

  it('refuses check on a task without a worktree', () => {
    const error = invalid({ check: 'npm test' }, { workspace: 'none' })
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('tasks[0] ("t").check')
    expect(error.message).toContain('workspace: worktree')
  })

  it('refuses an empty check command', () => {
    const error = invalid({ check: [] })
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('`tasks[0] ("t").check` is `[]`')
  })
})
