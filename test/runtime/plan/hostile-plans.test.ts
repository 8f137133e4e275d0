import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { compilePlan, loadPlan } from '../../../src/runtime/plan/load-plan.ts'
import { runPlan } from '../../../src/runtime/runtime.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const echo = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'echo.mjs')
const one = [{ id: 'a', agent: 'echo' }]
const compile = (plan: Record<string, unknown>) => compilePlan({ agents: { echo }, ...plan })

/** `{ a: { a: … 1 … } }`, `levels` deep, built without recursion. */
function nested(levels: number): unknown {
  let value: unknown = 1
  for (let i = 0; i < levels; i++) value = { a: value }
  return value
}

describe('hostile and mistaken plans', () => {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-hostile-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('regression: an unknown top-level key (maxparallel) was ignored; now ERR_PLAN_INVALID with did-you-mean', () => {
    const error = troupeErrorOf(() => compile({ maxparallel: 3, tasks: one }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`maxparallel` is not a plan key (did you mean "maxParallel"?)')])
  })

  it('regression: maxParallel 100000000 was accepted; now bounded at 10,000', () => {
    const error = troupeErrorOf(() => compile({ maxParallel: 100_000_000, tasks: one }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`maxParallel` is `100000000` (number): expected an integer from 1 to 10000')])
  })

  it('accepts maxParallel at the documented maximum', () => {
    expect(compile({ maxParallel: 10_000, tasks: one }).maxParallel).toBe(10_000)
  })

  it('regression: a plan with no tasks was accepted; now ERR_PLAN_INVALID', () => {
    const error = troupeErrorOf(() => compile({ tasks: [] }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`tasks` is `[]` (array): expected at least one task')])
  })

  it('regression: timeoutMs 99999999999 passed validation and then timed out at once (Node clamps it to 1 ms)', () => {
    const error = troupeErrorOf(() => compile({ tasks: [{ id: 'a', agent: 'echo', timeoutMs: 99_999_999_999 }] }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`tasks[0] ("a").timeoutMs` is `99999999999` (number): expected an integer from 1 to 2147483647')])
  })

  it('accepts timeoutMs at the longest timer Node keeps (2^31-1 ms)', () => {
    expect(compile({ tasks: [{ id: 'a', agent: 'echo', timeoutMs: 2_147_483_647 }] }).tasks[0]!.timeoutMs).toBe(2_147_483_647)
  })

  it('regression: input nested 10,000 levels deep is rejected at validation, without a stack overflow', () => {
    const error = troupeErrorOf(() => compile({ tasks: [{ id: 'a', agent: 'echo', input: nested(10_000) }] }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('expected a value nested at most 64 levels deep')])
  })

  it('accepts input nested exactly 64 levels deep', () => {
    expect(compile({ tasks: [{ id: 'a', agent: 'echo', input: nested(64) }] }).tasks).toHaveLength(1)
  })

  it('rejects input that refers to itself (a cycle nests without end), without hanging', () => {
    const input: Record<string, unknown> = {}
    input.self = input
    expect(troupeErrorOf(() => compile({ tasks: [{ id: 'a', agent: 'echo', input }] })).code).toBe('ERR_PLAN_INVALID')
  })

  it('regression: a YAML plan nested too deeply to parse reports ERR_PLAN_INVALID saying so', () => {
    const file = join(dir, 'deep.yaml')
    writeFileSync(file, `agents: { echo: ${JSON.stringify(echo)} }\ntasks: [{ id: a, agent: echo, input: ${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)} }]\n`)
    const error = troupeErrorOf(() => loadPlan(file))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('nests too deeply to read')])
  })

  it('names the plan file in messages', () => {
    const file = join(dir, 'typo.json')
    writeFileSync(file, JSON.stringify({ agents: { echo }, tasks: one, maxparallel: 2 }))
    expect(troupeErrorOf(() => loadPlan(file)).message).toContain(`Invalid plan file ${file}: \`maxparallel\``)
  })

  it('agents named toString, valueOf, constructor and __proto__ compile to their own modules', () => {
    // JSON, as a plan file would be: in an object literal `__proto__` would set the prototype.
    const plan = compilePlan(
      JSON.parse(`{"agents": {"toString": ${JSON.stringify(echo)}, "valueOf": ${JSON.stringify(echo)}, "constructor": ${JSON.stringify(echo)}, "__proto__": ${JSON.stringify(echo)}},
        "tasks": [{"id": "a", "agent": "toString"}, {"id": "b", "agent": "valueOf"}, {"id": "c", "agent": "constructor"}, {"id": "d", "agent": "__proto__"}]}`),
    )
    expect(plan.tasks.map((t) => [t.agentSpec.name, t.agentSpec.kind])).toEqual([['toString', 'module'], ['valueOf', 'module'], ['constructor', 'module'], ['__proto__', 'module']])
  })

  it('an agent name inherited from Object.prototype is not taken as declared', () => {
    expect(troupeErrorOf(() => compilePlan({ agents: { echo }, tasks: [{ id: 'a', agent: 'toString' }] })).code).toBe('ERR_PLAN_UNKNOWN_AGENT')
  })

  it('regression: tasks with ids __proto__ and constructor run, and keep their results and dependency outputs', async () => {
    const plan = JSON.parse(
      `{"agents": {"echo": ${JSON.stringify(echo)}}, "tasks": [{"id": "__proto__", "agent": "echo", "input": 1}, {"id": "constructor", "agent": "echo", "dependsOn": ["__proto__"]}]}`,
    )
    const result = await runPlan(plan, { config: { checkpoint: { enabled: false }, governor: { enabled: false }, pool: { minThreads: 0, maxThreads: 1 } } })
    const dependent = Object.getOwnPropertyDescriptor(result.tasks, 'constructor')?.value as { output: { dependencies: object } }
    expect([result.status, Object.keys(result.tasks)]).toEqual(['completed', ['__proto__', 'constructor']])
    expect(Object.keys(dependent.output.dependencies)).toEqual(['__proto__'])
  })
})
