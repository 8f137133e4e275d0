import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { runCli } from '../helpers/cli.ts'

const root = join(import.meta.dirname, '..', '..')
/** Stand-in `claude`, `codex` and `gemini` executables, so plans of CLI agents validate without the real CLIs. */
const standIns = { PATH: `${join(root, 'test', 'fixtures', 'bin')}${delimiter}${process.env.PATH}` }

function write(dir: string, file: string, value: unknown): void {
  mkdirSync(join(dir, file, '..'), { recursive: true })
  writeFileSync(join(dir, file), typeof value === 'string' ? value : JSON.stringify(value))
}

/** A fresh npm workspace of two packages: `a` lints and tests, `b` type-checks and has npm's placeholder test script. */
function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-init-'))
  write(dir, 'package.json', { name: 'ws', private: true, workspaces: ['packages/*'] })
  const lintA = 'node -e "console.log(\'lint a\')"'
  write(dir, 'packages/a/package.json', { name: 'a', version: '1.0.0', scripts: { lint: lintA, test: 'node test.mjs' } })
  write(dir, 'packages/a/test.mjs', "console.log('test a ran in', process.cwd())\n")
  const placeholder = 'echo "Error: no test specified" && exit 1'
  const typecheckB = 'node -e "console.log(\'typecheck b\')"'
  write(dir, 'packages/b/package.json', { name: 'b', version: '1.0.0', scripts: { typecheck: typecheckB, test: placeholder } })
  return dir
}

function gitRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-init-git-'))
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: dir })
  git('init', '-q')
  write(dir, 'src/a.ts', 'export const a = 1\n')
  write(dir, 'src/b.ts', 'export const b = 1\n')
  write(dir, '.gitignore', '.troupe/\n')
  git('add', '-A')
  git('commit', '-qm', 'init')
  return dir
}

describe('troupe init', { timeout: 120_000 }, () => {
  it('checks: `troupe init checks && troupe run` runs every check script of a fresh npm workspace', async () => {
    const cwd = workspace()
    expect((await runCli(['init', 'checks'], { cwd })).code).toBe(0)
    const run = await runCli(['run', '--json', '--no-progress'], { cwd })
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as { tasks: Record<string, { state: string; output: { stdout: string } }> }
    expect(Object.keys(result.tasks).sort()).toEqual(['lint-a', 'test-a', 'typecheck-b'])
    expect(result.tasks['test-a']!.output.stdout).toContain(join(cwd, 'packages', 'a'))
  })

  it('checks: the plan starts with the yaml-language-server header and the config names its schema', async () => {
    const cwd = workspace()
    expect((await runCli(['init'], { cwd })).code).toBe(0)
    const header = readFileSync(join(cwd, 'plan.yaml'), 'utf8').split('\n')[0]!
    expect(header).toMatch(/^# yaml-language-server: \$schema=.*schema\/plan\.schema\.json$/)
    expect(readFileSync(join(cwd, header.split('$schema=')[1]!), 'utf8')).toContain('"title": "troupe plan"')
    const config = JSON.parse(readFileSync(join(cwd, 'troupe.config.json'), 'utf8')) as { $schema: string }
    expect(readFileSync(join(cwd, config.$schema), 'utf8')).toContain('"title": "troupe config"')
  })

  it('checks: a package without a workspace gets one task per script of its own', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'troupe-init-single-'))
    write(cwd, 'package.json', { name: 'single', scripts: { lint: 'true', test: 'true' } })
    expect((await runCli(['init', 'checks'], { cwd })).code).toBe(0)
    const plan = parse(readFileSync(join(cwd, 'plan.yaml'), 'utf8')) as { tasks: { id: string }[] }
    expect(plan.tasks.map((t) => t.id)).toEqual(['lint-root', 'test-root'])
    expect((await runCli(['run', 'plan.yaml', '--quiet'], { cwd })).code).toBe(0)
  })

  it('checks: no check script anywhere is exit 2 with a message saying so', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'troupe-init-none-'))
    write(cwd, 'package.json', { name: 'none', scripts: { build: 'true' } })
    const { code, stderr } = await runCli(['init', 'checks'], { cwd })
    expect(code).toBe(2)
    expect(stderr).toContain('found no lint, typecheck, test script in package.json')
  })

  it('refuses to overwrite an existing plan.yaml (exit 2, naming it) and leaves it unchanged', async () => {
    const cwd = workspace()
    write(cwd, 'plan.yaml', 'mine\n')
    const { code, stderr } = await runCli(['init', 'checks'], { cwd })
    expect(code).toBe(2)
    expect(stderr).toContain('troupe init would overwrite plan.yaml; move it away, or pass --force to overwrite [ERR_ARGUMENT_INVALID]')
    expect(readFileSync(join(cwd, 'plan.yaml'), 'utf8')).toBe('mine\n')
  })

  it('overwrites with --force', async () => {
    const cwd = workspace()
    write(cwd, 'troupe.config.json', '{}')
    expect((await runCli(['init', 'checks', '--force'], { cwd })).code).toBe(0)
    expect(readFileSync(join(cwd, 'troupe.config.json'), 'utf8')).toContain('"timeoutMs": 600000')
  })

  it('refuses an unknown template (exit 2, listing the templates)', async () => {
    const { code, stderr } = await runCli(['init', 'chekcs'], { cwd: workspace() })
    expect(code).toBe(2)
    expect(stderr).toContain('Allowed choices are checks, review-fanout, feature-team')
  })

  it('review-fanout: a reviewer per file of `git diff --name-only HEAD`, then a summary; runs with the stand-in claude', async () => {
    const cwd = gitRepo()
    writeFileSync(join(cwd, 'src', 'a.ts'), 'export const a = 2\n')
    writeFileSync(join(cwd, 'src', 'b.ts'), 'export const b = 2\n')
    expect((await runCli(['init', 'review-fanout'], { cwd })).code).toBe(0)
    type Task = { id: string; description?: string; dependsOn?: string[] }
    const plan = parse(readFileSync(join(cwd, 'plan.yaml'), 'utf8')) as { tasks: Task[] }
    expect(plan.tasks.map((t) => [t.id, t.description ?? t.dependsOn])).toEqual([
      ['review-1', 'src/a.ts'],
      ['review-2', 'src/b.ts'],
      ['summary', ['review-1', 'review-2']],
    ])
    const check = await runCli(['plan'], { cwd, env: standIns })
    expect(check.code, check.stderr).toBe(0)
    const run = await runCli(['run', '--quiet'], { cwd, env: standIns })
    expect(run.code, run.stderr).toBe(0)
  })

  it('review-fanout: no changed file is exit 2', async () => {
    const { code, stderr } = await runCli(['init', 'review-fanout'], { cwd: gitRepo() })
    expect(code).toBe(2)
    expect(stderr).toContain('found no changed files')
  })

  it('feature-team: architect → backend / frontend / ux → qa / security in worktrees; runs with the stand-in claude', async () => {
    const cwd = gitRepo()
    expect((await runCli(['init', 'feature-team'], { cwd })).code).toBe(0)
    const plan = parse(readFileSync(join(cwd, 'plan.yaml'), 'utf8')) as { workspace: string; tasks: { id: string; dependsOn?: string[] }[] }
    expect(plan.workspace).toBe('worktree')
    expect(Object.fromEntries(plan.tasks.map((t) => [t.id, t.dependsOn ?? []]))).toEqual({
      architect: [],
      backend: ['architect'],
      frontend: ['architect'],
      ux: ['architect'],
      qa: ['backend', 'frontend', 'ux'],
      security: ['backend', 'frontend'],
    })
    const check = await runCli(['plan'], { cwd, env: standIns })
    expect(check.code, check.stderr).toBe(0)
    // With the stand-in `claude`: every role runs in its worktree and merges into the integration branch.
    const run = await runCli(['run', '--json', '--no-progress'], { cwd, env: standIns })
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as { integrationBranch?: string; totals: { completed: number } }
    expect([result.totals.completed, result.integrationBranch]).toEqual([6, expect.stringMatching(/^troupe\/.+\/integration$/)])
  })
})
