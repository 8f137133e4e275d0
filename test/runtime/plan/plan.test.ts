import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { compilePlan, loadPlan } from '../../../src/runtime/plan/load-plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')
const echo = join(fixtures, 'echo.mjs')

describe('compilePlan', () => {
  it('resolves dependencies to indices and agents to file URLs', () => {
    const plan = compilePlan({
      agents: { echo },
      tasks: [
        { id: 'a', agent: 'echo' },
        { id: 'b', agent: 'echo', dependsOn: ['a'] },
      ],
    })
    expect(plan.tasks[1]!.deps).toEqual([0])
    expect(plan.tasks[0]!.dependents).toEqual([1])
    expect(plan.tasks[0]!.moduleUrl).toMatch(/^file:\/\/.*echo\.mjs$/)
  })

  it('rejects duplicate ids with ERR_PLAN_DUPLICATE_ID naming the id', () => {
    const error = troupeErrorOf(() => compilePlan({ agents: { echo }, tasks: [{ id: 'a', agent: 'echo' }, { id: 'a', agent: 'echo' }] }))
    expect(error.code).toBe('ERR_PLAN_DUPLICATE_ID')
    expect(error.message).toContain('"a"')
  })

  it('rejects an unknown dependency with ERR_PLAN_UNKNOWN_DEPENDENCY and a suggestion', () => {
    const error = troupeErrorOf(() =>
      compilePlan({ agents: { echo }, tasks: [{ id: 'build', agent: 'echo' }, { id: 't', agent: 'echo', dependsOn: ['biuld'] }] }),
    )
    expect(error.code).toBe('ERR_PLAN_UNKNOWN_DEPENDENCY')
    expect(error.message).toContain('"biuld"')
    expect(error.message).toContain('did you mean "build"')
  })

  it('rejects an undeclared agent name with ERR_PLAN_UNKNOWN_AGENT', () => {
    const error = troupeErrorOf(() => compilePlan({ agents: { echo }, tasks: [{ id: 'a', agent: 'ecko' }] }))
    expect(error.code).toBe('ERR_PLAN_UNKNOWN_AGENT')
    expect(error.message).toContain('"ecko"')
  })

  it('rejects a missing agent module with ERR_PLAN_UNKNOWN_AGENT naming the path', () => {
    const error = troupeErrorOf(() => compilePlan({ agents: { ghost: './nope/ghost.mjs' }, tasks: [{ id: 'a', agent: 'ghost' }] }))
    expect(error.code).toBe('ERR_PLAN_UNKNOWN_AGENT')
    expect(error.message).toContain('ghost.mjs')
  })

  it('names the cycle path with ERR_PLAN_CYCLE', () => {
    const error = troupeErrorOf(() =>
      compilePlan({
        agents: { echo },
        tasks: [
          { id: 'a', agent: 'echo', dependsOn: ['c'] },
          { id: 'b', agent: 'echo', dependsOn: ['a'] },
          { id: 'c', agent: 'echo', dependsOn: ['b'] },
        ],
      }),
    )
    expect(error.code).toBe('ERR_PLAN_CYCLE')
    expect(error.message).toBe('Plan has a cycle: a → b → c → a')
  })

  it('rejects a self-dependency as a cycle', () => {
    expect(troupeErrorOf(() => compilePlan({ agents: { echo }, tasks: [{ id: 'a', agent: 'echo', dependsOn: ['a'] }] })).code).toBe('ERR_PLAN_CYCLE')
  })

  it.each([
    [{ tasks: 'x' }, '`tasks` is `"x"` (string): expected an array of tasks'],
    [{ tasks: [{ agent: 'echo' }] }, '`tasks[0].id` is missing: expected a non-empty string'],
    [{ tasks: [{ id: 'a', agent: 'echo', priority: 'urgent' }] }, '`tasks[0] ("a").priority` is `"urgent"` (string): expected one of "critical", "high", "medium", "low"'],
    [{ tasks: [{ id: 'a', agent: 'echo', retries: -1 }] }, '`tasks[0] ("a").retries` is `-1` (number): expected an integer >= 0'],
    [{ tasks: [{ id: 'a', agent: 'echo', timeoutMs: 1.5 }] }, '`tasks[0] ("a").timeoutMs` is `1.5` (number): expected an integer from 1 to 2147483647'],
    [{ tasks: [{ id: 'a', agent: 'echo', dependsOn: 'b' }] }, '`tasks[0] ("a").dependsOn` is `"b"` (string): expected an array of strings'],
    [{ tasks: [{ id: 'a', agent: 'echo', depends: ['b'] }] }, '`tasks[0] ("a").depends` is not a task key (did you mean "dependsOn"?)'],
    [{ strategy: 'fast', tasks: [{ id: 'a', agent: 'echo' }] }, '`strategy` is `"fast"` (string): expected one of "concurrent", "sequential", "pipeline", "waves", "hybrid"'],
  ])('rejects ill-typed field %j with ERR_PLAN_INVALID naming field, value and what is allowed', (plan, message) => {
    const error = troupeErrorOf(() => compilePlan({ agents: { echo }, ...plan }))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain(message)
  })

  it('accepts an agent given directly as a module path', () => {
    const plan = compilePlan({ tasks: [{ id: 'a', agent: './echo.mjs' }] }, { baseDir: fixtures })
    expect(plan.tasks[0]!.moduleUrl).toMatch(/echo\.mjs$/)
  })
})

describe('loadPlan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-plan-'))
  writeFileSync(join(dir, 'agent.mjs'), 'export default async () => 1\n')

  it('loads YAML and resolves agent paths relative to the plan file', () => {
    const file = join(dir, 'plan.yaml')
    writeFileSync(file, 'name: y\nagents:\n  a: ./agent.mjs\ntasks:\n  - id: t\n    agent: a\n')
    const plan = loadPlan(file)
    expect(plan.name).toBe('y')
    expect(plan.tasks[0]!.moduleUrl).toBe(new URL(`file://${join(dir, 'agent.mjs')}`).href)
  })

  it('loads JSON', () => {
    const file = join(dir, 'plan.json')
    writeFileSync(file, JSON.stringify({ agents: { a: './agent.mjs' }, tasks: [{ id: 't', agent: 'a' }] }))
    expect(loadPlan(file).tasks).toHaveLength(1)
  })

  it('reports malformed YAML as ERR_PLAN_INVALID naming the file', () => {
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, 'tasks: [ {id: a\n')
    const error = troupeErrorOf(() => loadPlan(file))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('bad.yaml')
  })

  it('reports a missing plan file as ERR_PLAN_INVALID', () => {
    expect(troupeErrorOf(() => loadPlan(join(dir, 'missing.yaml'))).code).toBe('ERR_PLAN_INVALID')
  })
})
