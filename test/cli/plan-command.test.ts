import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { analyzePlan, claimConflicts } from '../../src/runtime/schedule/analysis.ts'
import { type TaskSpec } from '../../src/runtime/plan/plan.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import { writeDemandFile } from '../../src/runtime/governor/demand-file.ts'
import { runCli } from '../helpers/cli.ts'
import { pastDurations } from '../../src/runtime/journal/past-durations.ts'
import { createRuntime } from '../../src/runtime/runtime.ts'

const sleep = join(import.meta.dirname, '..', 'fixtures', 'agents', 'sleep.mjs')
const compile = (tasks: TaskSpec[]) => compilePlan({ name: 'p', agents: { sleep }, tasks }, { baseDir: import.meta.dirname })
const t = (id: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: 'sleep', ...extra })

describe('analyzePlan', () => {
  // a(100) → b(300) → d(100), c(50) alone.
  const plan = compile([t('a', { estimateMs: 100 }), t('b', { estimateMs: 300, dependsOn: ['a'] }), t('c', { estimateMs: 50 }), t('d', { estimateMs: 100, dependsOn: ['b', 'c'] })])

  it('lists task ids by dependency level', () => {
    expect(analyzePlan(plan, { maxParallel: 2 }).levels).toEqual([['a', 'c'], ['b'], ['d']])
  })

  it('names the critical path and its length', () => {
    expect(analyzePlan(plan, { maxParallel: 2 }).criticalPath).toEqual({ ids: ['a', 'b', 'd'], ms: 500 })
  })

  it('estimates the makespan at maxParallel against the sequential sum', () => {
    const a = analyzePlan(plan, { maxParallel: 2 })
    expect([a.makespanMs, a.sequentialMs, a.lowerBoundMs]).toEqual([500, 550, 500])
  })

  it('estimates the waves strategy for comparison', () => {
    const lopsided = compile([t('x', { estimateMs: 100 }), t('y', { estimateMs: 10 }), t('z', { estimateMs: 10, dependsOn: ['y'] })])
    // waves: z waits for x's level to end (110); concurrent: y → z runs beside x (100).
    expect([analyzePlan(lopsided, { maxParallel: 2 }).makespanMs, analyzePlan(lopsided, { maxParallel: 2 }).wavesMakespanMs]).toEqual([100, 110])
  })

  it('estimates with one slot under the sequential strategy', () => {
    expect(analyzePlan(plan, { maxParallel: 4, strategy: 'sequential' }).makespanMs).toBe(550)
  })

  it('counts tasks without an estimate as the median estimate', () => {
    const partial = compile([t('a', { estimateMs: 100 }), t('b', { estimateMs: 300 }), t('c', { estimateMs: 200 }), t('d')])
    expect([analyzePlan(partial, { maxParallel: 1 }).sequentialMs, analyzePlan(partial, { maxParallel: 1 }).defaultEstimateMs]).toEqual([800, 200])
  })
})

describe('claimConflicts', () => {
  it('reports unordered tasks whose claims overlap', () => {
    const plan = compile([t('a', { claims: ['src/**'] }), t('b', { claims: ['src/api/user.ts'] }), t('c', { claims: ['docs/**'] })])
    expect(claimConflicts(plan)).toEqual([{ tasks: ['a', 'b'], claims: ['src/**', 'src/api/user.ts'] }])
  })

  it('ignores overlapping tasks that a dependency already orders', () => {
    const plan = compile([t('a', { claims: ['src/**'] }), t('m'), t('b', { claims: ['src/x.ts'], dependsOn: ['m'] }), t('n', { dependsOn: ['a'] })])
    const ordered = compile([t('a', { claims: ['src/**'] }), t('m', { dependsOn: ['a'] }), t('b', { claims: ['src/x.ts'], dependsOn: ['m'] })])
    expect([claimConflicts(plan).length, claimConflicts(ordered).length]).toEqual([1, 0])
  })
})

describe('troupe plan', () => {
  let dir: string

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-plan-'))
    const tasks = (cyclic: boolean) => `
agents: { sleep: ${JSON.stringify(sleep)} }
tasks:
  - { id: fetch, agent: sleep, estimateMs: 100${cyclic ? ', dependsOn: [report]' : ''} }
  - { id: parse, agent: sleep, estimateMs: 200, dependsOn: [fetch] }
  - { id: report, agent: sleep, estimateMs: 50, dependsOn: [parse] }
  - { id: lint, agent: sleep, estimateMs: 50 }
`
    writeFileSync(join(dir, 'plan.yaml'), tasks(false))
    writeFileSync(join(dir, 'cycle.yaml'), tasks(true))
    writeFileSync(
      join(dir, 'backwards.yaml'),
      `strategy: pipeline
agents: { sleep: ${JSON.stringify(sleep)} }
tasks:
  - { id: build, agent: sleep, stage: one, dependsOn: [test] }
  - { id: test, agent: sleep, stage: two }
`,
    )
  })

  it('a pipeline task depending on a later stage: exits 2 naming task, dependency and stages, no stack trace (regression: it crashed)', async () => {
    const { code, stderr } = await runCli(['plan', join(dir, 'backwards.yaml')])
    expect(code).toBe(2)
    expect(stderr).toContain('ERR_PLAN_INVALID')
    expect(stderr).toContain('"build" (stage "one") depends on "test", which is in the later stage "two"')
    expect(stderr).not.toMatch(/\n\s+at /)
  }, 60_000)

  it('--strategy hybrid on a plan without stages: exits 2 naming the strategy, no stack trace', async () => {
    const { code, stderr } = await runCli(['plan', join(dir, 'plan.yaml'), '--strategy', 'hybrid'])
    const named = stderr.includes('`strategy` "hybrid" only for a plan that declares `stages`')
    expect([code, named, stderr.includes('ERR_ARGUMENT_INVALID')]).toEqual([2, true, true])
    expect(stderr).not.toMatch(/\n\s+at /)
  }, 60_000)

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('exits 2 naming the cycle on a cyclic plan', async () => {
    const { code, stderr } = await runCli(['plan', join(dir, 'cycle.yaml')])
    expect([code, stderr.includes('fetch → parse → report → fetch'), stderr.includes('ERR_PLAN_CYCLE')]).toEqual([2, true, true])
  })

  it('prints the analysis as one JSON document with --json', async () => {
    const { code, stdout } = await runCli(['plan', join(dir, 'plan.yaml'), '--max-parallel', '2', '--json'])
    const analysis = JSON.parse(stdout)
    expect([code, analysis.criticalPath, analysis.makespanMs, analysis.sequentialMs]).toEqual([0, { ids: ['fetch', 'parse', 'report'], ms: 350 }, 350, 400])
  })

  it('prints levels, the critical path and the estimates on stderr', async () => {
    const { code, stderr } = await runCli(['plan', join(dir, 'plan.yaml'), '--max-parallel', '2'])
    expect([code, stderr.includes('critical path: 350 ms, 3 tasks: fetch → parse → report'), stderr.includes('estimated makespan at maxParallel 2: 350 ms')]).toEqual([0, true, true])
  })
})

describe('troupe plan reports what troupe run would reject', () => {
  let dir: string
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text)
    return join(dir, name)
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-plan-reject-'))
  })

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('regression: a task using a limit config does not define passed troupe plan; now exit 2 as in run', async () => {
    const file = write('limit.yaml', `agents: { sleep: ${JSON.stringify(sleep)} }\ntasks: [{ id: a, agent: sleep, uses: [llm] }]\n`)
    const plan = await runCli(['plan', file], { cwd: dir })
    const run = await runCli(['run', file, '--quiet'], { cwd: dir })
    const message = 'Task "a" uses limit `"llm"` (string), which config.limits does not define'
    expect([plan.code, plan.stderr.includes(message), run.code, run.stderr.includes(message)]).toEqual([2, true, 2, true])
  })

  it('accepts the limit when the config given with --config defines it', async () => {
    const file = write('limit-ok.yaml', `agents: { sleep: ${JSON.stringify(sleep)} }\ntasks: [{ id: a, agent: sleep, uses: [llm] }]\n`)
    const config = write('troupe.limits.json', JSON.stringify({ limits: { llm: { maxConcurrent: 2 } } }))
    expect((await runCli(['plan', file, '--config', config], { cwd: dir })).code).toBe(0)
  })

  it('exits 2 with ERR_AGENT_UNAVAILABLE for a command that is not on PATH', async () => {
    const file = write('unavailable.yaml', 'agents: { x: { kind: command, run: [no-such-program-troupe] } }\ntasks: [{ id: a, agent: x }]\n')
    const { code, stderr } = await runCli(['plan', file], { cwd: dir })
    expect([code, stderr.includes('ERR_AGENT_UNAVAILABLE'), stderr.includes('no-such-program-troupe')]).toEqual([2, true, true])
  })

  it('regression: input nested 10,000 levels deep exits 2 at validation in troupe plan and troupe run', async () => {
    const file = write('deep.json', `{"agents": {"sleep": ${JSON.stringify(sleep)}}, "tasks": [{"id": "a", "agent": "sleep", "input": ${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}]}`)
    const plan = await runCli(['plan', file], { cwd: dir })
    const run = await runCli(['run', file, '--quiet'], { cwd: dir })
    const message = 'expected a value nested at most 64 levels deep'
    expect([plan.code, plan.stderr.includes(message), run.code, run.stderr.includes(message)]).toEqual([2, true, 2, true])
  })

  it('regression: troupe run of a plan with maxparallel (a typo) exited 0; now exit 2 with did-you-mean', async () => {
    const file = write('typo.yaml', `maxparallel: 3\nagents: { sleep: ${JSON.stringify(sleep)} }\ntasks: [{ id: a, agent: sleep }]\n`)
    const { code, stderr } = await runCli(['run', file, '--quiet'], { cwd: dir })
    expect([code, stderr.includes('`maxparallel` is not a plan key (did you mean "maxParallel"?)')]).toEqual([2, true])
  })
})

describe('troupe plan shows', () => {
  let dir: string
  let file: string

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-plan-show-'))
    file = join(dir, 'hybrid.yaml')
    writeFileSync(
      file,
      `strategy: hybrid
stages:
  design: { parallel: true }
  build: { parallel: false, maxParallel: 1, failFast: true }
agents:
  sleep: ${JSON.stringify(sleep)}
  shell: { kind: command, run: [sh, -c, 'true'] }
tasks:
  - { id: arch, agent: sleep, stage: design, description: Design the API, tags: [design, api] }
  - { id: lint, agent: shell, stage: build, dependsOn: [arch] }
  - { id: deploy, agent: sleep, stage: build, dependsOn: [arch], when: "deps.arch.output.ok == true" }
`,
    )
  })

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('agent kinds, stages, conditional tasks and labels on stderr', async () => {
    const { code, stderr } = await runCli(['plan', file], { cwd: dir })
    expect([
      code,
      stderr.includes('agents: sleep (module), shell (command)'),
      stderr.includes('  build: 2 tasks, sequential, maxParallel 1, failFast'),
      stderr.includes('  deploy: when deps.arch.output.ok == true'),
      stderr.includes('  arch [design, api]: Design the API'),
    ]).toEqual([0, true, true, true, true])
  })

  it('the same in the --json document', async () => {
    const { code, stdout } = await runCli(['plan', file, '--json'], { cwd: dir })
    const report = JSON.parse(stdout)
    expect(report.strategy).toBe('hybrid')
    expect([code, report.agents, report.stages.map((s: { name: string }) => s.name), report.conditions, report.labels]).toEqual([
      0,
      [{ name: 'sleep', kind: 'module' }, { name: 'shell', kind: 'command' }],
      ['design', 'build'],
      [{ id: 'deploy', when: 'deps.arch.output.ok == true' }],
      [{ id: 'arch', description: 'Design the API', tags: ['design', 'api'] }],
    ])
  })
})

describe('troupe plan shows the governor estimates', () => {
  let dir: string
  let file: string

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-plan-estimates-'))
    file = join(dir, 'plan.yaml')
    writeFileSync(
      file,
      `agents:
  sleep: ${JSON.stringify(sleep)}
  build: { kind: command, run: [sh, -c, 'true'] }
  fresh: { kind: command, run: [sh, -c, 'true'] }
tasks:
  - { id: a, agent: sleep }
  - { id: b, agent: build, resources: { cpu: 2, memoryMb: 512 } }
  - { id: c, agent: fresh }
`,
    )
    // What an earlier run in this project measured (written at run end with the journal on).
    writeDemandFile(join(dir, '.troupe'), { sleep: { cpu: 0.01, memoryMb: 40, samples: 12, source: 'measured' } })
  })

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('measured in earlier runs, declared in the plan, or not known yet, on stderr', async () => {
    const { code, stderr } = await runCli(['plan', file], { cwd: dir })
    expect([
      code,
      stderr.includes('  sleep  ~0.0 CPU  ~40 MB  (measured, 12 attempts)'),
      stderr.includes('  build  ~2.0 CPU  ~512 MB  (plan)'),
      stderr.includes('  fresh  not measured yet: counted as ~1.0 CPU'),
    ]).toEqual([0, true, true, true])
  })

  it('the same in the --json document', async () => {
    const { stdout } = await runCli(['plan', file, '--json'], { cwd: dir })
    expect(JSON.parse(stdout).governor).toEqual({
      enabled: true,
      estimates: [
        { agent: 'sleep', cpu: 0.01, memoryMb: 40, source: 'measured', samples: 12 },
        { agent: 'build', cpu: 2, memoryMb: 512, source: 'plan', samples: 0 },
        { agent: 'fresh', source: 'none', samples: 0 },
      ],
    })
  })
})

describe('troupe plan: names and estimates (regressions from issue 25)', () => {
  it('calls a hybrid plan hybrid (regression: it said pipeline)', () => {
    const plan = compilePlan(
      { name: 'h', strategy: 'hybrid', stages: { one: { parallel: true } }, agents: { sleep }, tasks: [{ id: 'a', agent: 'sleep', stage: 'one' }] },
      { baseDir: import.meta.dirname },
    )
    expect(analyzePlan(plan, { maxParallel: 2 }).strategy).toBe('hybrid')
  })

  it('estimates tasks without estimateMs from past journaled runs (regression: 1 ms per task)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-plan-history-'))
    const runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { dir } } })
    try {
      const plan = { name: 'timed', agents: { sleep }, tasks: [{ id: 'slow', agent: 'sleep', input: { ms: 200 } }, { id: 'quick', agent: 'sleep', input: { ms: 1 } }] }
      await runtime.run(plan).result
      const history = pastDurations(dir, 'timed')
      expect(history.get('slow')).toBeGreaterThanOrEqual(150)
      const analysis = analyzePlan(compilePlan(plan, { baseDir: dir }), { maxParallel: 1, history })
      expect(analysis.measured).toBe(2)
      expect(analysis.sequentialMs).toBeGreaterThanOrEqual(150)
    } finally {
      await runtime.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
