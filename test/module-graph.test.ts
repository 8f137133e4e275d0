import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')
const TSX = import.meta.resolve('tsx')
const RECORD = join(root, 'test', 'fixtures', 'module-graph', 'record-modules.mjs')
const dir = mkdtempSync(join(tmpdir(), 'troupe-module-graph-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The URLs of the modules a child process (and its worker threads) resolves when it runs `args`. */
function modulesLoaded(args: readonly string[], name: string, cwd = root): string[] {
  const log = join(dir, `${name}.log`)
  const child = spawnSync(process.execPath, ['--import', TSX, '--import', RECORD, ...args], {
    cwd,
    env: { ...process.env, TROUPE_MODULE_LOG: log },
    encoding: 'utf8',
  })
  expect(child.status, child.stderr).toBe(0)
  return readFileSync(log, 'utf8').split('\n')
}

/** The npm packages a child process loads when it runs `args` (a script and its arguments), by name. */
function packagesLoaded(args: readonly string[], name: string, cwd = root): string[] {
  const names = new Set<string>()
  for (const url of modulesLoaded(args, name, cwd)) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
    if (match) names.add(match[1]!)
  }
  return [...names].sort()
}

/** Loaded only when a plan needs them: a remote backend, CLI agents' MCP tools, LLM agents, command agents, worktrees. */
const ON_DEMAND = ['bullmq', 'ioredis', 'openai', '@anthropic-ai/sdk', '@modelcontextprotocol/sdk', 'execa', 'systeminformation', 'zod']

describe('module graph', () => {
  it("import('troupe') loads none of the libraries a plan may never need", () => {
    const loaded = packagesLoaded(['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'src', 'index.ts'))})`], 'index')
    expect(loaded).toContain('xstate')
    expect(loaded.filter((name) => ON_DEMAND.includes(name))).toEqual([])
  })

  it("import('troupe') loads no YAML parser: it is required by the first YAML plan", () => {
    const loaded = packagesLoaded(['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'src', 'index.ts'))})`], 'index-yaml')
    expect(loaded).not.toContain('yaml')
  })

  it("import('troupe') loads no expression engine: jexl is required by the first `when` condition", () => {
    const loaded = packagesLoaded(['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'src', 'index.ts'))})`], 'index-jexl')
    expect(loaded).not.toContain('jexl')
  })

  it('troupe run of a JSON plan with one command task loads no process library, no MCP or SDK, no YAML parser', () => {
    const work = mkdtempSync(join(dir, 'run-'))
    const plan = { name: 'one', agents: { t: { kind: 'command', run: ['true'] } }, tasks: [{ id: 'a', agent: 't' }] }
    writeFileSync(join(work, 'plan.json'), JSON.stringify(plan))
    const loaded = packagesLoaded([join(root, 'src', 'cli', 'main.ts'), 'run', 'plan.json', '--quiet'], 'run-command', work)
    expect(loaded).toContain('xstate')
    expect(loaded.filter((name) => [...ON_DEMAND, 'smol-toml', 'yaml'].includes(name))).toEqual([])
  })

  it('troupe run of a plan without module agents starts no worker-thread pool thread', () => {
    const work = mkdtempSync(join(dir, 'run-'))
    const plan = { name: 'one', agents: { t: { kind: 'command', run: ['true'] } }, tasks: [{ id: 'a', agent: 't' }] }
    writeFileSync(join(work, 'plan.json'), JSON.stringify(plan))
    const urls = modulesLoaded([join(root, 'src', 'cli', 'main.ts'), 'run', 'plan.json', '--quiet'], 'run-no-threads', work)
    expect(urls.filter((url) => url.includes('/piscina/dist/worker.js') || url.includes('worker-entry'))).toEqual([])
  })

  it("import('troupe') and a run without module agents load no thread-pool library (piscina, comlink)", () => {
    const work = mkdtempSync(join(dir, 'run-'))
    const plan = { name: 'one', agents: { t: { kind: 'command', run: ['true'] } }, tasks: [{ id: 'a', agent: 't' }] }
    writeFileSync(join(work, 'plan.json'), JSON.stringify(plan))
    const run = packagesLoaded([join(root, 'src', 'cli', 'main.ts'), 'run', 'plan.json', '--quiet'], 'run-no-pool', work)
    const entry = packagesLoaded(['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'src', 'index.ts'))})`], 'index-no-pool')
    expect([...run, ...entry].filter((name) => name === 'piscina' || name === 'comlink')).toEqual([])
  })

  it('troupe --version loads no engine library (only commander)', () => {
    const loaded = packagesLoaded([join(root, 'src', 'cli', 'main.ts'), '--version'], 'version')
    const runner = ['tsx', 'get-tsconfig', 'resolve-pkg-maps']
    expect(loaded.filter((name) => name !== 'commander' && !runner.includes(name))).toEqual([])
  })
})
