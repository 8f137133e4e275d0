import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { definitionHashes } from '../../../src/runtime/journal/journal.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { RunPlan } from '../../../src/runtime/plan/run-plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')
let root: string
let runtime: Runtime

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-hash-'))
  process.env.TROUPE_HASH_TEST_KEY = 'k'
  runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { dir: join(root, 'ck') } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
  rmSync(root, { recursive: true, force: true })
})

const hashOf = (plan: Plan): string => definitionHashes(new RunPlan(compilePlan(plan, { baseDir: root })), {}, new Map())[0]!
const command = (agent: Record<string, unknown>, input: unknown = {}): Plan =>
  ({ name: 'h', agents: { x: { kind: 'command', run: ['echo', 'one'], ...agent } }, tasks: [{ id: 't', agent: 'x', input }] }) as Plan
const llm = (agent: Record<string, unknown>): Plan =>
  ({
    name: 'h',
    agents: { x: { kind: 'openai', model: 'm', apiKeyEnv: 'TROUPE_HASH_TEST_KEY', ...agent } },
    tasks: [{ id: 't', agent: 'x', input: { prompt: 'p' } }],
  }) as Plan

describe('definition hash: everything that defines the work (regression: resume reused stale results)', () => {
  const base = hashOf(command({}))

  it('is stable for the same definition', () => {
    expect(hashOf(command({}))).toBe(base)
  })

  for (const [what, change] of [
    ['command run', { run: ['echo', 'two'] }],
    ['command args (string form)', { run: 'echo one' }],
    ['command cwd', { cwd: '/tmp' }],
    ['command env', { env: { A: '1' } }],
    ['command output', { output: 'json' }],
  ] as const) {
    it(`covers the ${what}`, () => expect(hashOf(command(change))).not.toBe(base))
  }

  const worktree = (task: Record<string, unknown>): Plan =>
    ({ name: 'h', workspace: 'worktree', agents: { x: { kind: 'command', run: ['echo', 'one'] } }, tasks: [{ id: 't', agent: 'x', ...task }] }) as Plan

  it('covers a worktree task\'s own check (regression: a changed check reused the completed task)', () => {
    expect(hashOf(worktree({ check: ['test', '-f', 'a'] }))).not.toBe(hashOf(worktree({ check: ['test', '-f', 'b'] })))
  })

  it('covers a worktree task\'s own repair policy', () => {
    expect(hashOf(worktree({ repair: { attempts: 1 } }))).not.toBe(hashOf(worktree({ repair: { attempts: 2 } })))
  })

  it('covers the prompt template in the input', () => {
    expect(hashOf(command({}, { prompt: 'a {{input.x}}' }))).not.toBe(hashOf(command({}, { prompt: 'b {{input.x}}' })))
  })

  for (const [what, change] of [
    ['model', { model: 'n' }],
    ['system prompt', { system: 'be brief' }],
    ['temperature', { temperature: 0.5 }],
    ['maxTokens', { maxTokens: 10 }],
    ['output mode', { output: 'json' }],
    ['baseUrl', { baseUrl: 'http://127.0.0.1:1/v1' }],
  ] as const) {
    it(`covers the agent option ${what}`, () => expect(hashOf(llm(change))).not.toBe(hashOf(llm({}))))
  }
})

describe('resume after the definition changed reruns the task', () => {
  it('a command agent whose `run` changed is not reused', async () => {
    const first = await runtime.run(command({ run: ['echo', 'one'] }), { runId: 'cmd-changed' }).result
    const second = await runtime.run(command({ run: ['echo', 'two'] }), { runId: 'cmd-changed' }).result
    expect(first.tasks.t!.output).toMatchObject({ stdout: 'one\n' })
    expect(second.tasks.t).toMatchObject({ state: 'COMPLETED', output: { stdout: 'two\n' } })
    expect(second.tasks.t!.reused).toBeFalsy()
  }, 60_000)

  it('a module agent whose file changed is not reused; unchanged, it is', async () => {
    const file = join(root, 'agent.mjs')
    copyFileSync(join(fixtures, 'noop.mjs'), file)
    const plan = { name: 'mod', tasks: [{ id: 'm', agent: file }] } as Plan
    await runtime.run(plan, { runId: 'module-changed' }).result
    const same = await runtime.run(plan, { runId: 'module-changed' }).result
    expect(same.tasks.m!.reused).toBe(true)
    writeFileSync(file, 'export default async () => "changed"\n')
    // A new runtime, as a resume from the CLI is (a worker thread keeps the module it imported).
    const fresh = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { dir: join(root, 'ck') } } })
    try {
      const changed = await fresh.run(plan, { runId: 'module-changed' }).result
      expect(changed.tasks.m).toMatchObject({ state: 'COMPLETED', output: 'changed' })
      expect(changed.tasks.m!.reused).toBeFalsy()
    } finally {
      await fresh.close()
    }
  }, 60_000)
})
