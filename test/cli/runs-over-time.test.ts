import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CLI_ENTRY, runCli } from '../helpers/cli.ts'
import { gitIn, tempRepo } from '../helpers/git-repo.ts'
import { exited, journalLines, until } from '../helpers/journal-file.ts'

const TSX = import.meta.resolve('tsx')

function workspace(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-over-time-'))
  writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false } }))
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  return dir
}

function start(cwd: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' })
}

/** A plan whose one command task prints `lines` numbered lines, `gapMs` apart. */
function talkingPlan(lines: number, gapMs: number): string {
  const script = `for (let i = 1; i <= ${lines}; i++) { console.log('line ' + i); await new Promise((r) => setTimeout(r, ${gapMs})) }`
  return commandPlan('talk', 't', script)
}

/** A plan of one task `id` running `script` as a node ES module in a command agent. */
function commandPlan(name: string, id: string, script: string): string {
  const agent = { kind: 'command', run: ['node', '--input-type=module', '-e', script] }
  return JSON.stringify({ name, agents: { [id]: agent }, tasks: [{ id, agent: id }] })
}

const locked = (cwd: string, runId: string) => existsSync(join(cwd, '.troupe', runId, 'lock'))

describe('the checkpoint directory', () => {
  it('is created with a .gitignore of * so a repository does not show it as untracked', { timeout: 120_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hi\n' })
    writeFileSync(join(repo, 'plan.json'), talkingPlan(1, 0))
    gitIn(repo, 'add', 'plan.json')
    gitIn(repo, 'commit', '-qm', 'plan')
    expect((await runCli(['run', 'plan.json', '--quiet'], { cwd: repo })).code).toBe(0)
    expect(readFileSync(join(repo, '.troupe', '.gitignore'), 'utf8')).toMatch(/^\*$/m)
    expect(gitIn(repo, 'status', '--porcelain')).toBe('')
  })
})

describe('attempt logs of a resumed run', () => {
  const name = 'separate the invocations with a line naming the attempt and the invocation (regression: appended with no separator)'
  it(name, { timeout: 120_000 }, async () => {
    // Fails while `fail` exists: the first invocation fails, the resume succeeds.
    const script = "import { existsSync as e } from 'node:fs'; const f = e('fail'); console.log(f ? 'broken' : 'fixed'); process.exit(+f)"
    const plan = commandPlan('resume', 'x', script)
    const cwd = workspace({ 'plan.json': plan, fail: '' })
    expect((await runCli(['run', 'plan.json', '--run-id', 'again', '--quiet'], { cwd })).code).toBe(1)
    const { rmSync } = await import('node:fs')
    rmSync(join(cwd, 'fail'))
    expect((await runCli(['run', 'plan.json', '--run-id', 'again', '--quiet'], { cwd })).code).toBe(0)
    const { stdout } = await runCli(['logs', 'again', 'x'], { cwd })
    expect(stdout).toMatch(/^== x · attempt 1 ==\nbroken\n── troupe: x · attempt 1 · invocation 2 · \S+Z ──\nfixed\n$/)
  })
})

describe('troupe logs -f', () => {
  it('prints the lines of a running run as they come and exits when it ends', { timeout: 120_000 }, async () => {
    const cwd = workspace({ 'plan.json': talkingPlan(12, 150) })
    const run = start(cwd, ['run', 'plan.json', '--run-id', 'followed', '--quiet'])
    const ran = exited(run)
    await until(() => locked(cwd, 'followed'), 'the run to take its lock')
    const { code, stdout } = await runCli(['logs', 'followed', '-f'], { cwd })
    expect(await ran).toBe(0)
    expect(code).toBe(0)
    expect(stdout).toBe(`== t · attempt 1 ==\n${Array.from({ length: 12 }, (_, i) => `line ${i + 1}\n`).join('')}`)
  })
})

describe('troupe cancel', () => {
  it('cancels a running run through its process, which ends it cancelled and resumable', { timeout: 120_000 }, async () => {
    const cwd = workspace({ 'plan.json': talkingPlan(600, 100) })
    const run = start(cwd, ['run', 'plan.json', '--run-id', 'stopme', '--quiet'])
    const ran = exited(run)
    await until(() => existsSync(join(cwd, '.troupe', 'stopme', 'logs', 't', '1.log')), 'the task to log', 40_000)
    const { code, stderr } = await runCli(['cancel', 'stopme'], { cwd })
    expect(code).toBe(0)
    expect(stderr).toContain('run stopme cancelled')
    expect(await ran).toBe(130)
    expect(journalLines(cwd, 'stopme').at(-1)).toMatchObject({ type: 'run-end', status: 'cancelled' })
  })

  it('exits 2 for a run that is not running', { timeout: 120_000 }, async () => {
    const cwd = workspace({ 'plan.json': talkingPlan(1, 0) })
    expect((await runCli(['run', 'plan.json', '--run-id', 'over', '--quiet'], { cwd })).code).toBe(0)
    const { code, stderr } = await runCli(['cancel', 'over'], { cwd })
    expect(code).toBe(2)
    expect(stderr).toContain('Run "over" is not running')
  })
})

describe('troupe clean', () => {
  /** Two finished runs, `old` last active ten days ago. */
  async function twoRuns(): Promise<string> {
    const cwd = workspace({ 'plan.json': talkingPlan(1, 0) })
    for (const id of ['old', 'new']) expect((await runCli(['run', 'plan.json', '--run-id', id, '--quiet'], { cwd })).code).toBe(0)
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000)
    utimesSync(join(cwd, '.troupe', 'old', 'journal.jsonl'), tenDaysAgo, tenDaysAgo)
    return cwd
  }
  const runs = (cwd: string) =>
    readdirSync(join(cwd, '.troupe'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()

  it('--older-than 7d removes only the runs last active before then', { timeout: 120_000 }, async () => {
    const cwd = await twoRuns()
    const { code, stderr } = await runCli(['clean', '--older-than', '7d'], { cwd })
    expect(code).toBe(0)
    expect(stderr).toContain('troupe: removed run old')
    expect(runs(cwd)).toEqual(['new'])
  })

  it('outside a git repository cleans only runs, those not running (regression: it failed)', { timeout: 120_000 }, async () => {
    const cwd = await twoRuns()
    mkdirSync(join(cwd, '.troupe', 'not-a-run', 'x'), { recursive: true })
    const { code, stderr } = await runCli(['clean'], { cwd })
    expect(code).toBe(0)
    expect(stderr).toContain('not in a git repository')
    expect(runs(cwd)).toEqual(['not-a-run'])
  })

  it('exits 2 naming the allowed units for --older-than 7x', { timeout: 120_000 }, async () => {
    const { code, stderr } = await runCli(['clean', '--older-than', '7x'], { cwd: workspace() })
    expect(code).toBe(2)
    expect(stderr).toContain('Expected `--older-than` to be a number and a unit (s, m, h, d or w)')
  })
})
