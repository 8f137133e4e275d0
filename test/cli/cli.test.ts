import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { runCli } from '../helpers/cli.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-cli-'))
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  return dir
}

const okPlan = `name: ok
agents:
  sleep: ${join(agents, 'sleep.mjs')}
tasks:
  - { id: a, agent: sleep, input: { ms: 20 } }
  - { id: b, agent: sleep, input: { ms: 20 }, dependsOn: [a] }
`

describe('troupe run', () => {
  it('exits 0 and prints exactly one RunResult on stdout with --json', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    const { code, stdout, stderr } = await runCli(['run', 'plan.yaml', '--json', '--run-id', 'cli-ok'], { cwd: dir })
    expect(code).toBe(0)
    const result = JSON.parse(stdout) as RunResult
    expect(result).toMatchObject({ runId: 'cli-ok', status: 'completed', totals: { tasks: 2, completed: 2 } })
    expect(stderr).toContain('✓ completed')
  })

  it('regression: runs module agents when node was started with --max-old-space-size (every one failed ERR_AGENT_LOAD)', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    const { code, stdout } = await runCli(['run', 'plan.yaml', '--json'], { cwd: dir, nodeFlags: ['--max-old-space-size=2048', '--stack-size=900'] })
    expect({ code, result: JSON.parse(stdout) }).toMatchObject({ code: 0, result: { status: 'completed', totals: { completed: 2 } } })
  })

  it('prints progress lines and a summary table on stderr', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    const { stderr, stdout } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(stdout).toBe('')
    expect(stderr).toContain('▶ started')
    expect(stderr).toMatch(/speedup \d+\.\d\dx at maxParallel/)
  })

  it('exits 1 when a task does not complete', async () => {
    const dir = workspace({
      'plan.yaml': `tasks:\n  - { id: t, agent: ${join(agents, 'throw.mjs')} }\n`,
    })
    expect((await runCli(['run', 'plan.yaml'], { cwd: dir })).code).toBe(1)
  })

  it('exits 2 naming the cycle of a cyclic plan', async () => {
    const echo = join(agents, 'echo.mjs')
    const dir = workspace({
      'plan.yaml': `tasks:\n  - { id: a, agent: ${echo}, dependsOn: [c] }\n  - { id: b, agent: ${echo}, dependsOn: [a] }\n  - { id: c, agent: ${echo}, dependsOn: [b] }\n`,
    })
    const { code, stderr } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('a → b → c → a')
    expect(stderr).toContain('ERR_PLAN_CYCLE')
  })

  it('exits 2 naming an agent module that does not exist', async () => {
    const dir = workspace({ 'plan.yaml': 'agents:\n  coder: ./agents/coder.mjs\ntasks:\n  - { id: a, agent: coder }\n' })
    const { code, stderr } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('coder.mjs')
    expect(stderr).toContain('ERR_PLAN_UNKNOWN_AGENT')
  })

  it('exits 2 with ERR_AGENT_LOAD and file:line:column for an agent module that does not parse', async () => {
    const dir = workspace({ 'plan.yaml': `agents:\n  coder: ${join(agents, 'bad-token.mjs')}\ntasks:\n  - { id: a, agent: coder }\n` })
    const { code, stderr } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain(`${join(agents, 'bad-token.mjs')}:3:16`)
    expect(stderr).toContain('ERR_AGENT_LOAD')
  })

  it('prints ERR_AGENT_LOAD as one line, no summary before it (regression: it came after a summary)', { timeout: 90_000 }, async () => {
    const dir = workspace({ 'plan.yaml': `agents:\n  coder: ${join(agents, 'bad-token.mjs')}\ntasks:\n  - { id: a, agent: coder }\n` })
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--quiet'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr.trimStart()).toMatch(/^troupe: .*bad-token\.mjs:3:16/)
    expect(stderr).not.toMatch(/^task +state/m)
    expect(stderr).not.toContain('makespan')
  })

  it('prints an argument error and a one-line hint, not the help (regression: the help hid the error)', { timeout: 90_000 }, async () => {
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--max-parallel', 'x'])
    expect(code).toBe(2)
    expect(stderr.trim().split('\n')).toEqual([
      `error: option '--max-parallel <n>' argument 'x' is invalid. --max-parallel must be an integer >= 1, got "x"`,
      '(add --help for usage)',
    ])
  })

  it('says "1 task" when the plan has one (regression: "1 tasks")', { timeout: 90_000 }, async () => {
    const plan = `agents:\n  sleep: ${join(agents, 'sleep.mjs')}\ntasks:\n  - { id: a, agent: sleep, input: { ms: 1 } }\n`
    const dir = workspace({ 'plan.yaml': plan })
    const { stderr } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(stderr).toMatch(/— 1 task of "/)
  })

  it('exits 2 naming the key of an invalid config value', async () => {
    const dir = workspace({ 'plan.yaml': okPlan, 'bad.json': JSON.stringify({ retry: { backoff: 'linear' } }) })
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--config', 'bad.json'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('`retry.backoff` is `"linear"` (string)')
  })

  it('reads troupe.config.json from the working directory', async () => {
    const dir = workspace({ 'plan.yaml': okPlan, 'troupe.config.json': JSON.stringify({ maxParallel: 0 }) })
    const { code, stderr } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('troupe.config.json')
  })

  it('exits 2 for an invalid --max-parallel', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--max-parallel', '0'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('--max-parallel must be an integer >= 1, got "0"')
  })

  it('exits 2 for an unknown strategy', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    expect((await runCli(['run', 'plan.yaml', '--strategy', 'fastest'], { cwd: dir })).code).toBe(2)
  })

  it('exits 2 for a missing plan file', async () => {
    const dir = workspace({})
    const { code, stderr } = await runCli(['run', 'nowhere.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('nowhere.yaml')
  })

  it('applies --max-parallel to the run', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    const { stdout } = await runCli(['run', 'plan.yaml', '--json', '--max-parallel', '3'], { cwd: dir })
    expect((JSON.parse(stdout) as RunResult).maxParallel).toBe(3)
  })

  it('finds troupe.config.json beside the plan when the working directory has none (regression: examples ignored their config)', async () => {
    const dir = workspace({})
    mkdirSync(join(dir, 'example'))
    writeFileSync(join(dir, 'example', 'plan.yaml'), okPlan)
    writeFileSync(join(dir, 'example', 'troupe.config.json'), JSON.stringify({ maxParallel: 3 }))
    const { code, stdout } = await runCli(['run', 'example/plan.yaml', '--json'], { cwd: dir })
    expect(code).toBe(0)
    expect((JSON.parse(stdout) as RunResult).maxParallel).toBe(3)
  })

  it('prefers troupe.config.json in the working directory over the one beside the plan', async () => {
    const dir = workspace({ 'troupe.config.json': JSON.stringify({ maxParallel: 5 }) })
    mkdirSync(join(dir, 'example'))
    writeFileSync(join(dir, 'example', 'plan.yaml'), okPlan)
    writeFileSync(join(dir, 'example', 'troupe.config.json'), JSON.stringify({ maxParallel: 3 }))
    const { stdout } = await runCli(['run', 'example/plan.yaml', '--json'], { cwd: dir })
    expect((JSON.parse(stdout) as RunResult).maxParallel).toBe(5)
  })

  it('prefers --config over both config files', async () => {
    const dir = workspace({ 'troupe.config.json': JSON.stringify({ maxParallel: 5 }), 'mine.json': JSON.stringify({ maxParallel: 2 }) })
    mkdirSync(join(dir, 'example'))
    writeFileSync(join(dir, 'example', 'plan.yaml'), okPlan)
    writeFileSync(join(dir, 'example', 'troupe.config.json'), JSON.stringify({ maxParallel: 3 }))
    const { stdout } = await runCli(['run', 'example/plan.yaml', '--json', '--config', 'mine.json'], { cwd: dir })
    expect((JSON.parse(stdout) as RunResult).maxParallel).toBe(2)
  })

  it('strips escape sequences from ctx.log lines (regression: an agent retitled and cleared the terminal and printed a fake "✓ completed")', async () => {
    const dir = workspace({ 'plan.yaml': `tasks:\n  - { id: h, agent: ${join(agents, 'hostile-log.mjs')} }\n` })
    const { code, stderr } = await runCli(['run', 'plan.yaml'], { cwd: dir })
    expect(code).toBe(0)
    expect(stderr).not.toContain('\u001b')
    expect(stderr).not.toContain('\r')
    expect(stderr).toContain('h: �✓ completed fake-task')
  })

  it('says how to resume a run that did not complete', async () => {
    const dir = workspace({ 'plan.yaml': `tasks:\n  - { id: t, agent: ${join(agents, 'throw.mjs')} }\n` })
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--run-id', 'resume-me'], { cwd: dir })
    expect(code).toBe(1)
    expect(stderr).toContain('resume: troupe run plan.yaml --run-id resume-me')
    expect(stderr).toContain(join('.troupe', 'resume-me'))
  })

  it('exits 2 for a dashboard bound beyond loopback without --allow-host', async () => {
    const dir = workspace({ 'plan.yaml': okPlan })
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--dashboard', '0', '--host', '0.0.0.0'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toContain('--allow-host')
  })
})

describe('troupe --version', () => {
  it('prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
    const { code, stdout } = await runCli(['--version'])
    expect(code).toBe(0)
    expect(stdout.trim()).toBe(version)
  })
})

describe('troupe run: a run paused at its budget', () => {
  it('exits 3 with status paused, and a resume with a larger budget completes it (exit 0)', async () => {
    const plan = `name: spend
agents: { spend: ${JSON.stringify(join(agents, 'spend.mjs'))} }
maxParallel: 1
tasks:
  - { id: a, agent: spend, input: { usage: { costUsd: 2 } } }
  - { id: b, agent: spend, dependsOn: [a] }
`
    const dir = workspace({ 'plan.yaml': plan, 'small.json': JSON.stringify({ governor: { enabled: false }, budget: { maxCostUsd: 1 } }), 'big.json': JSON.stringify({ governor: { enabled: false }, budget: { maxCostUsd: 10 } }) })
    const paused = await runCli(['run', 'plan.yaml', '--json', '--run-id', 'over', '--config', 'small.json'], { cwd: dir })
    expect(paused.code).toBe(3)
    expect((JSON.parse(paused.stdout) as RunResult).status).toBe('paused')
    const resumed = await runCli(['run', 'plan.yaml', '--json', '--run-id', 'over', '--config', 'big.json'], { cwd: dir })
    expect(resumed.code).toBe(0)
    expect((JSON.parse(resumed.stdout) as RunResult).totals.reused).toBe(1)
  }, 60_000)
})
