import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan, TaskSpec } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agent = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'agents', name)
const task = (id: string, file: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent(file), ...extra })

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({
    config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } },
  })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

/** A plan whose first task uses `file`; a sibling and its child use good agents. */
const planWith = (file: string): Plan => ({
  name: 'load',
  tasks: [task('bad', file), task('sibling', 'sleep.mjs', { input: { ms: 10 } }), task('child', 'echo.mjs', { dependsOn: ['sibling'] })],
})

describe('an agent module that cannot load fails the run before any task starts', () => {
  const cases: [string, string, string][] = [
    ['does not parse', 'syntax-error.mjs', 'SyntaxError: Unexpected end of input'],
    ['throws while loading', 'load-error.mjs', 'broken at import time'],
    ['has no default export', 'no-default.mjs', "the module's default export is missing"],
    ['has a number as its default export', 'number-default.mjs', "the module's default export is a number"],
  ]

  for (const [what, file, detail] of cases) {
    it(`an agent that ${what}: ERR_AGENT_LOAD naming the agent and the file, no task run`, async () => {
      const result = await runtime.run(planWith(file)).result
      expect(result.status).toBe('failed')
      expect(result.error?.code).toBe('ERR_AGENT_LOAD')
      expect(result.error?.message).toContain(`Agent "${agent(file)}"`)
      expect(result.error?.message).toContain(file)
      expect(result.error?.message).toContain(detail)
      expect(Object.values(result.tasks).map((t) => [t.state, t.attempts, t.startedAt])).toEqual([
        ['CANCELLED', 0, undefined],
        ['CANCELLED', 0, undefined],
        ['CANCELLED', 0, undefined],
      ])
    })
  }

  it('names file:line:column of a syntax error', async () => {
    const result = await runtime.run(planWith('bad-token.mjs')).result
    expect(result.error?.message).toContain(`${agent('bad-token.mjs')}:3:16: SyntaxError: Unexpected number`)
  })

  it('names every agent that uses the broken file', async () => {
    const plan: Plan = { name: 'two-names', agents: { one: agent('load-error.mjs'), two: agent('load-error.mjs') }, tasks: [{ id: 'a', agent: 'one' }, { id: 'b', agent: 'two' }] }
    const result = await runtime.run(plan).result
    expect(result.error?.message).toContain('Agent "one", "two" cannot be loaded from')
  })

  it('leaves the runtime serving the next run', async () => {
    await runtime.run(planWith('load-error.mjs')).result
    const after = await runtime.run({ name: 'after', tasks: [task('x', 'echo.mjs')] }).result
    expect(after.status).toBe('completed')
  })
})

describe('the check result is cached by file and mtime', () => {
  it('checks an edited file again: a fixed agent runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-agent-check-'))
    try {
      const file = join(dir, 'agent.mjs')
      writeFileSync(file, 'export const nothing = 1\n')
      const broken = await runtime.run({ name: 'edit', tasks: [{ id: 't', agent: file }] }).result
      expect(broken.error?.code).toBe('ERR_AGENT_LOAD')
      writeFileSync(file, 'export default async () => "fixed"\n')
      // Same content length or a coarse clock must not hide the edit: move the mtime explicitly.
      utimesSync(file, new Date(), new Date(Date.now() + 5_000))
      const fixed = await runtime.run({ name: 'edit', tasks: [{ id: 't', agent: file }] }).result
      expect([fixed.status, fixed.tasks.t!.output]).toEqual(['completed', 'fixed'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('checks a TypeScript agent through tsx', async () => {
    const result = await runtime.run({ name: 'ts', tasks: [task('t', 'typed.ts', { input: { n: 2 } })] }).result
    expect(result.status).toBe('completed')
  })
})
