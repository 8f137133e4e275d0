import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import type { ResourceProbe } from '../../../src/runtime/governor/governor.ts'
import { resolveConfig } from '../../../src/runtime/core/config.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'
import { gitIn, tempRepo } from '../../helpers/git-repo.ts'

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

/** A fresh runtime per run (as `troupe run` is one process per run), sharing `dir`'s `.troupe`. */
async function runIn(dir: string, plan: Plan, options: { cache?: boolean; maxBytes?: number } = {}): Promise<RunResult> {
  runtime = createRuntime({
    config: {
      governor: { enabled: false },
      checkpoint: { dir: join(dir, '.troupe') },
      ...(options.maxBytes ? { cache: { maxBytes: options.maxBytes } } : {}),
    },
  })
  try {
    return await runtime.run(plan, { baseDir: dir, ...(options.cache === undefined ? {} : { cache: options.cache }) }).result
  } finally {
    await runtime.close()
    runtime = undefined
  }
}

/** Each run of the agent appends its task id to `ran.log`, then prints `input.txt` and its dependency's output. */
function plan(tasks: Plan['tasks'], extra: Partial<Plan> = {}): Plan {
  return {
    name: 'cached',
    agents: {
      work: {
        kind: 'command',
        run: ['sh', '-c', 'echo "$1" >> ran.log; cat input.txt 2>/dev/null; echo "dep=$2"', 'sh', '{{task.id}}', '{{input.dep}}'],
      },
    },
    tasks,
    ...extra,
  }
}

const ran = (dir: string) =>
  existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').split('\n').filter(Boolean) : []
const entries = (dir: string) => readdirSync(join(dir, '.troupe', 'cache')).filter((name) => name.endsWith('.entry'))

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-cache-'))
  writeFileSync(join(dir, 'input.txt'), 'one\n')
  return dir
}

describe('task cache', () => {
  it('a second run of an unchanged plan takes every output from the cache and runs no agent', async () => {
    const dir = project()
    const tasks = plan([
      { id: 'a', agent: 'work', cache: true, inputs: ['input.txt'] },
      { id: 'b', agent: 'work', cache: true, dependsOn: ['a'] },
    ])
    const first = await runIn(dir, tasks)
    expect(first.totals).toMatchObject({ completed: 2, cached: 0 })
    expect(ran(dir)).toEqual(['a', 'b'])
    const second = await runIn(dir, tasks)
    expect(ran(dir)).toEqual(['a', 'b'])
    expect(second.status).toBe('completed')
    expect(second.totals).toMatchObject({ completed: 2, cached: 2 })
    expect(second.tasks.a).toMatchObject({ state: 'COMPLETED', cached: true, output: first.tasks.a!.output })
    expect(second.tasks.b!.cached).toBe(true)
  })

  it('runs a task again when a file its `inputs` match changed', async () => {
    const dir = project()
    const tasks = plan([{ id: 'a', agent: 'work', cache: true, inputs: ['*.txt'] }])
    await runIn(dir, tasks)
    writeFileSync(join(dir, 'input.txt'), 'two\n')
    const second = await runIn(dir, tasks)
    expect(ran(dir)).toEqual(['a', 'a'])
    expect(second.tasks.a!.cached).toBeUndefined()
    expect((second.tasks.a!.output as { stdout: string }).stdout).toContain('two')
  })

  it('runs a task again when its definition changed', async () => {
    const dir = project()
    await runIn(dir, plan([{ id: 'a', agent: 'work', cache: true, input: { dep: 'x' } }]))
    const second = await runIn(dir, plan([{ id: 'a', agent: 'work', cache: true, input: { dep: 'y' } }]))
    expect(ran(dir)).toEqual(['a', 'a'])
    expect(second.totals.cached).toBe(0)
  })

  it('runs a task again when a dependency\'s output changed, though its own definition did not', async () => {
    const dir = project()
    // `a` is not cached and prints input.txt; `b` depends on its output only.
    const tasks = plan([{ id: 'a', agent: 'work' }, { id: 'b', agent: 'work', cache: true, dependsOn: ['a'] }])
    await runIn(dir, tasks)
    const same = await runIn(dir, tasks)
    expect(same.tasks.b!.cached).toBe(true)
    writeFileSync(join(dir, 'input.txt'), 'changed\n')
    const changed = await runIn(dir, tasks)
    expect(changed.tasks.b!.cached).toBeUndefined()
    expect(ran(dir)).toEqual(['a', 'b', 'a', 'a', 'b'])
  })

  it('takes nothing from the cache with `cache: false` (--no-cache), and still stores', async () => {
    const dir = project()
    const tasks = plan([{ id: 'a', agent: 'work', cache: true }])
    await runIn(dir, tasks)
    const uncached = await runIn(dir, tasks, { cache: false })
    expect(uncached.totals.cached).toBe(0)
    expect(ran(dir)).toEqual(['a', 'a'])
    expect(entries(dir)).toHaveLength(1)
  })

  it('caches nothing for tasks without `cache` (the default), and the plan\'s `cache` is every task\'s default', async () => {
    const dir = project()
    await runIn(dir, plan([{ id: 'a', agent: 'work' }]))
    await runIn(dir, plan([{ id: 'a', agent: 'work' }]))
    expect(ran(dir)).toEqual(['a', 'a'])
    const tasks = plan([{ id: 'b', agent: 'work' }, { id: 'c', agent: 'work', cache: false }], { cache: true })
    await runIn(dir, tasks)
    const second = await runIn(dir, tasks)
    expect(second.tasks.b!.cached).toBe(true)
    expect(second.tasks.c!.cached).toBeUndefined()
  })

  it('evaluates a `when` before the cache: a true condition may hit, a false one skips as usual', async () => {
    const dir = project()
    const tasks = plan([
      { id: 'a', agent: 'work', cache: true },
      { id: 'yes', agent: 'work', cache: true, dependsOn: ['a'], when: 'deps.a.output.exitCode == 0' },
      { id: 'no', agent: 'work', cache: true, dependsOn: ['a'], when: 'deps.a.output.exitCode != 0' },
    ])
    await runIn(dir, tasks)
    const second = await runIn(dir, tasks)
    expect(second.tasks.yes).toMatchObject({ state: 'COMPLETED', cached: true })
    expect(second.tasks.no).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_CONDITION_FALSE' } })
    expect(ran(dir)).toEqual(['a', 'yes'])
  })

  it('never caches a failed task', async () => {
    const dir = project()
    const failing: Plan = {
      agents: { fail: { kind: 'command', run: ['sh', '-c', 'echo x >> ran.log; exit 3'] } },
      tasks: [{ id: 'a', agent: 'fail', cache: true }],
    }
    await runIn(dir, failing)
    const second = await runIn(dir, failing)
    expect(second.tasks.a!.state).toBe('FAILED')
    expect(ran(dir)).toHaveLength(2)
    expect(existsSync(join(dir, '.troupe', 'cache')) ? entries(dir) : []).toEqual([])
  })

  it('treats a corrupt or truncated entry as a miss, and replaces it', async () => {
    const dir = project()
    const tasks = plan([{ id: 'a', agent: 'work', cache: true }])
    await runIn(dir, tasks)
    const [entry] = entries(dir)
    const file = join(dir, '.troupe', 'cache', entry!)
    // Edited output: the checksum no longer matches.
    writeFileSync(file, readFileSync(file, 'utf8').replace('dep=', 'DEP='))
    const edited = await runIn(dir, tasks)
    expect(edited.tasks.a!.cached).toBeUndefined()
    truncateSync(file, Math.floor(statSync(file).size / 2))
    const truncated = await runIn(dir, tasks)
    expect(truncated.tasks.a!.cached).toBeUndefined()
    writeFileSync(file, 'garbage')
    const garbage = await runIn(dir, tasks)
    expect(garbage.tasks.a!.cached).toBeUndefined()
    expect(ran(dir)).toEqual(['a', 'a', 'a', 'a'])
    // Each miss stored a good entry again: the next run hits.
    expect((await runIn(dir, tasks)).tasks.a!.cached).toBe(true)
  })

  it('keeps the cache within cache.maxBytes by evicting the least recently used entries', async () => {
    const dir = project()
    const one = (id: string) => plan([{ id, agent: 'work', cache: true }])
    await runIn(dir, one('a'))
    const size = statSync(join(dir, '.troupe', 'cache', entries(dir)[0]!)).size
    // Room for two entries, not three.
    const maxBytes = Math.floor(size * 2.5)
    await runIn(dir, one('b'), { maxBytes })
    // `a` used again: now `b` is the least recently used.
    expect((await runIn(dir, one('a'), { maxBytes })).tasks.a!.cached).toBe(true)
    await runIn(dir, one('c'), { maxBytes })
    expect(entries(dir)).toHaveLength(2)
    expect((await runIn(dir, one('a'), { maxBytes })).tasks.a!.cached).toBe(true)
    expect((await runIn(dir, one('c'), { maxBytes })).tasks.c!.cached).toBe(true)
    expect((await runIn(dir, one('b'), { maxBytes })).tasks.b!.cached).toBeUndefined()
  })

  it('refuses an `inputs` glob that leaves the plan\'s directory, naming the field and the value', () => {
    runtime = createRuntime({ config: { governor: { enabled: false } } })
    const escaping = plan([{ id: 'a', agent: 'work', inputs: ['src/**', '../secrets/*'] }])
    const error = troupeErrorOf(() => runtime!.run(escaping, { baseDir: project() }))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('`tasks[0] ("a").inputs[1]` is `"../secrets/*"` (string)')
    const braces = troupeErrorOf(() => runtime!.run(plan([{ id: 'a', agent: 'work', inputs: ['{..,src}/*'] }]), { baseDir: project() }))
    expect(braces.message).toContain('`..` segment')
    const absolute = troupeErrorOf(() => runtime!.run(plan([{ id: 'a', agent: 'work', inputs: ['/etc/passwd'] }]), { baseDir: project() }))
    expect(absolute.message).toContain('it is absolute')
  })

  it('a worktree task\'s cached change is merged onto the integration branch of the next run, its agent not run', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\nran.log\n' })
    const log = join(repo, 'ran.log')
    const script = 'echo "$1" >> "$2"; printf "made by %s\\n" "$1" > "$1.txt"; printf "\\0\\1bin" > "$1.bin"'
    const worktreePlan: Plan = {
      workspace: 'worktree',
      agents: {
        write: {
          kind: 'command',
          run: ['sh', '-c', script, 'sh', '{{task.id}}', log],
        },
      },
      tasks: [
        { id: 'a', agent: 'write', cache: true },
        { id: 'b', agent: 'write', cache: true, dependsOn: ['a'] },
      ],
    }
    const first = await runIn(repo, worktreePlan)
    expect(first.status).toBe('completed')
    const second = await runIn(repo, worktreePlan)
    expect(second.status).toBe('completed')
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toEqual(['a', 'b'])
    expect(second.totals.cached).toBe(2)
    const branch = second.integrationBranch!
    expect(branch).not.toBe(first.integrationBranch)
    expect(gitIn(repo, 'show', `${branch}:a.txt`)).toBe('made by a')
    expect(gitIn(repo, 'show', `${branch}:b.txt`)).toBe('made by b')
    expect(execBuffer(repo, `${branch}:a.bin`)).toEqual(Buffer.from('\0\u0001bin', 'latin1'))
    // Merged through the normal path: one merge commit per task, with troupe's trailers.
    expect(gitIn(repo, 'log', '--merges', '--format=%s', branch).split('\n')).toEqual(['troupe: merge b', 'troupe: merge a'])
    expect(second.tasks.a!.workspace).toMatchObject({ merge: 'merged', filesChanged: 2 })
  })
})

describe('task cache and the governor', () => {
  it('a hit passes the fit gate without a CPU reservation: it does not wait behind a CPU-bound task on busy cores', async () => {
    const dir = project()
    const busy: ResourceProbe = {
      sample: async () => ({ cpuPercent: 100, ownCpuPercent: 0, memoryPercent: 10, memoryUsedMb: 1000 }),
      initial: () => ({ cpuPercent: 100, ownCpuPercent: 0, memoryPercent: 10, memoryUsedMb: 1000 }),
    }
    const cached = ['c1', 'c2', 'c3'].map((id) => ({ id, agent: 'work', cache: true, resources: { cpu: 1 } }))
    const config = { governor: { sampleIntervalMs: 50 }, checkpoint: { dir: join(dir, '.troupe') } }
    runtime = createRuntime({ config, probe: busy })
    await runtime.run(plan(cached), { baseDir: dir }).result
    await runtime.close()
    // The blocker holds a whole core until every cached task has completed; held behind it, they never would.
    const blocker = { kind: 'command', run: ['sh', '-c', 'while [ ! -f go ]; do sleep 0.05; done'] }
    const withBlocker: Plan = {
      ...plan([{ id: 'blocker', agent: 'block', priority: 'critical', resources: { cpu: 1 }, timeoutMs: 60_000 }, ...cached]),
      agents: { ...plan([]).agents, block: blocker },
    }
    runtime = createRuntime({ config, probe: busy })
    const run = runtime.run(withBlocker, { baseDir: dir })
    const done = new Set<string>()
    run.on('task:state', (e) => {
      if (e.state === 'RUNNING' && e.taskId === 'blocker') expect(done.size).toBe(0)
      if (e.state !== 'COMPLETED' || e.taskId === 'blocker') return
      done.add(e.taskId)
      if (done.size === 3) writeFileSync(join(dir, 'go'), '')
    })
    const result = await run.result
    expect(result.status).toBe('completed')
    expect(result.totals.cached).toBe(3)
    expect(ran(dir)).toEqual(['c1', 'c2', 'c3'])
  })
})

describe('task cache settings', () => {
  it('refuses a cache.maxBytes that is not an integer >= 1, naming the key and the value', () => {
    const error = troupeErrorOf(() => resolveConfig({ cache: { maxBytes: 0 } }))
    expect(error.code).toBe('ERR_CONFIG_INVALID')
    expect(error.message).toContain('cache.maxBytes')
    expect(error.message).toContain('0')
    expect(resolveConfig({}).cache.maxBytes).toBe(256 * 1024 * 1024)
  })

  it('refuses a task `cache` or a plan `cache` that is not a boolean, and `inputs` that are not strings', () => {
    const bad = (raw: unknown) => troupeErrorOf(() => compilePlan(raw as Plan, { baseDir: tmpdir() }))
    const agents = { sh: { kind: 'command', run: ['true'] } }
    expect(bad({ agents, tasks: [{ id: 'a', agent: 'sh', cache: 'yes' }] }).message).toContain('`tasks[0] ("a").cache`')
    expect(bad({ agents, cache: 1, tasks: [{ id: 'a', agent: 'sh' }] }).message).toContain('`cache`')
    const inputs = bad({ agents, tasks: [{ id: 'a', agent: 'sh', inputs: 'src/**' }] })
    expect(inputs.code).toBe('ERR_PLAN_INVALID')
    expect(inputs.message).toContain('`tasks[0] ("a").inputs`')
  })
})

describe('task cache: what is never stored or reused', () => {
  const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')

  it('does not store an attempt that added tasks (regression: a hit could not add them again)', async () => {
    const dir = project()
    const log = join(dir, 'marker.log')
    const spawning: Plan = {
      agents: { spawn: join(fixtures, 'spawn.mjs'), mark: join(fixtures, 'marker.mjs') },
      tasks: [
        {
          id: 'parent',
          agent: 'spawn',
          cache: true,
          input: { children: [{ id: 'child', agent: 'mark', cache: true, input: { file: log } }] },
        },
      ],
    }
    const first = await runIn(dir, spawning)
    expect(first.tasks.child!.state).toBe('COMPLETED')
    const second = await runIn(dir, spawning)
    expect(second.tasks.parent!.cached).toBeUndefined()
    // The child was added again and ran again: tasks added at run time are never cached.
    expect(second.tasks.child).toMatchObject({ state: 'COMPLETED', added: true })
    expect(second.tasks.child!.cached).toBeUndefined()
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toEqual(['child', 'child'])
  })

  it('runs a worktree task whose cached change no longer applies to the integration branch', async () => {
    const repo = tempRepo({ 'shared.txt': 'one\n', '.gitignore': '.troupe/\nran.log\n' })
    const log = join(repo, 'ran.log')
    const editing: Plan = {
      workspace: 'worktree',
      agents: { edit: { kind: 'command', run: ['sh', '-c', 'echo x >> "$1"; sed -i s/one/two/ shared.txt', 'sh', log] } },
      tasks: [{ id: 'edit', agent: 'edit', cache: true }],
    }
    await runIn(repo, editing)
    // The user's branch moved under the recorded change: it no longer applies.
    writeFileSync(join(repo, 'shared.txt'), 'three\n')
    gitIn(repo, 'commit', '-qam', 'moved')
    const second = await runIn(repo, editing)
    expect(second.status).toBe('completed')
    expect(second.tasks.edit!.cached).toBeUndefined()
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toHaveLength(2)
  })
})

describe('task cache: only completed work is kept', () => {
  it('regression: a worktree task whose merge failed verify is not reused by the next run (its failing change was kept)', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\nran.log\n' })
    const log = join(repo, 'ran.log')
    const failing: Plan = {
      workspace: 'worktree',
      integration: { verify: ['sh', '-c', 'exit 1'] },
      agents: { write: { kind: 'command', run: ['sh', '-c', 'echo w >> "$1"; echo x > x.txt', 'sh', log] } },
      tasks: [{ id: 'w', agent: 'write', cache: true, retries: 0 }],
    }
    const first = await runIn(repo, failing)
    expect(first.tasks.w!.error?.code).toBe('ERR_VERIFY_FAILED')
    expect(entries(repo)).toEqual([])
    const second = await runIn(repo, failing)
    expect(second.tasks.w!.cached).toBeUndefined()
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toHaveLength(2)
  })

  it('regression: a repair runs its agent and a change that failed its check is not kept', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\nran.log\n' })
    const log = join(repo, 'ran.log')
    const mark = join(mkdtempSync(join(tmpdir(), 'troupe-cache-check-')), 'failed-once')
    const repaired: Plan = {
      workspace: 'worktree',
      agents: { write: { kind: 'command', run: ['sh', '-c', 'echo w >> "$1"; echo x > x.txt', 'sh', log] } },
      tasks: [
        {
          id: 'w',
          agent: 'write',
          cache: true,
          check: ['sh', '-c', 'test -f "$1" || { touch "$1"; exit 1; }', 'sh', mark],
          repair: { attempts: 1, on: ['check'] },
        },
      ],
    }
    const first = await runIn(repo, repaired)
    expect(first.status).toBe('completed')
    expect(first.tasks.w!.repairs).toHaveLength(1)
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toHaveLength(2)
    expect(entries(repo)).toEqual([])
  })
})

function execBuffer(repo: string, object: string): Buffer {
  return Buffer.from(gitIn(repo, 'show', object), 'latin1')
}
