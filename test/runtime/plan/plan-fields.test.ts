import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const echo = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'echo.mjs')
const compile = (plan: Record<string, unknown>) => compilePlan({ agents: { echo }, ...plan })
const task = (id: string, extra: Record<string, unknown> = {}) => ({ id, agent: 'echo', ...extra })

describe('description, tags and resources', () => {
  it('keeps description and tags on the compiled task, uninterpreted', () => {
    const [t] = compile({ tasks: [task('a', { description: 'Design the API', tags: ['design', 'api'] })] }).tasks
    expect([t!.description, t!.tags]).toEqual(['Design the API', ['design', 'api']])
  })

  it('defaults tags to none', () => {
    expect(compile({ tasks: [task('a')] }).tasks[0]!.tags).toEqual([])
  })

  it('keeps resources as a prior for the governor', () => {
    expect(compile({ tasks: [task('a', { resources: { cpu: 1.5, memoryMb: 300 } })] }).tasks[0]!.resources).toEqual({ cpu: 1.5, memoryMb: 300 })
  })

  it('rejects negative resources naming the field', () => {
    const error = troupeErrorOf(() => compile({ tasks: [task('a', { resources: { memoryMb: -1 } })] }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`tasks[0] ("a").resources.memoryMb` is `-1` (number): expected a number >= 0')])
  })

  it('rejects an unknown resource with did-you-mean', () => {
    expect(troupeErrorOf(() => compile({ tasks: [task('a', { resources: { memoryMB: 1 } })] })).message).toContain('`tasks[0] ("a").resources.memoryMB` is not a resources key (did you mean "memoryMb"?)')
  })
})

describe('when', () => {
  it('stores the condition source on the compiled task', () => {
    const plan = compile({ tasks: [task('check'), task('deploy', { dependsOn: ['check'], when: "deps.check.output.ok == true && input.env != 'prod'" })] })
    expect(plan.tasks[1]!.when).toBe("deps.check.output.ok == true && input.env != 'prod'")
  })

  it('accepts bracket access to a dependency and every documented operator', () => {
    const when = "!(deps['check'].output.n < 1) || deps.check.output.n >= 2 && input.x <= 3 && input.y > 0"
    expect(compile({ tasks: [task('check'), task('b', { dependsOn: ['check'], when })] }).tasks[1]!.when).toBe(when)
  })

  it('rejects a syntax error naming the task and the expression', () => {
    const error = troupeErrorOf(() => compile({ tasks: [task('a', { when: 'input.ok ==' })] }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`tasks[0] ("a").when` is "input.ok ==": not a valid expression')])
  })

  it('rejects deps.X when X is not a dependency', () => {
    const error = troupeErrorOf(() => compile({ tasks: [task('check'), task('b', { when: 'deps.check.output.ok' })] }))
    expect(error.message).toContain('reads deps.check, but "check" is not a dependency of task "b"')
  })

  it('rejects a name other than deps and input', () => {
    expect(troupeErrorOf(() => compile({ tasks: [task('a', { when: 'process.env.HOME' })] })).message).toContain('reads "process"; a condition may read only deps.TASK_ID.output… and input…')
  })

  it('rejects transforms and functions', () => {
    expect(troupeErrorOf(() => compile({ tasks: [task('a', { when: 'input.x | upper' })] })).message).toContain('calls "upper"')
  })

  it('rejects a dependency named by a computed key', () => {
    expect(troupeErrorOf(() => compile({ tasks: [task('c'), task('a', { dependsOn: ['c'], when: 'deps[input.which].output' })] })).message).toContain('computed key')
  })

  it('rejects an empty condition', () => {
    expect(troupeErrorOf(() => compile({ tasks: [task('a', { when: '  ' })] })).code).toBe('ERR_PLAN_INVALID')
  })
})

describe('hybrid stages', () => {
  const stages = { design: { parallel: true }, build: { parallel: false, maxParallel: 2, failFast: true } }

  it('stores the stages in stage order with their rules, and compiles as hybrid (regression: it compiled as pipeline)', () => {
    const plan = compile({ strategy: 'hybrid', stages, tasks: [task('b', { stage: 'build' }), task('a', { stage: 'design' })] })
    expect([plan.strategy, Object.values(plan.stages!)]).toEqual([
      'hybrid',
      [
        { name: 'design', parallel: true, maxParallel: undefined, failFast: undefined },
        { name: 'build', parallel: false, maxParallel: 2, failFast: true },
      ],
    ])
  })

  it('rejects a task whose stage is not declared, with did-you-mean', () => {
    const error = troupeErrorOf(() => compile({ strategy: 'hybrid', stages, tasks: [task('a', { stage: 'biuld' })] }))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`tasks[0] ("a").stage` is `"biuld"` (string): expected one of the declared stages: design, build (did you mean "build"?)')])
  })

  it('rejects a task without a stage in a hybrid plan', () => {
    expect(troupeErrorOf(() => compile({ strategy: 'hybrid', stages, tasks: [task('a')] })).message).toContain('`tasks[0] ("a").stage` is `undefined`')
  })

  it('rejects a hybrid plan without stages', () => {
    expect(troupeErrorOf(() => compile({ strategy: 'hybrid', tasks: [task('a')] })).message).toContain('`stages` is `undefined`')
  })

  it('rejects stages under another strategy', () => {
    expect(troupeErrorOf(() => compile({ strategy: 'pipeline', stages, tasks: [task('a', { stage: 'design' })] })).message).toContain('`strategy` is `"pipeline"` (string): expected "hybrid"')
  })

  it('rejects a stage rule without parallel, and an unknown rule key', () => {
    const error = troupeErrorOf(() => compile({ strategy: 'hybrid', stages: { s: { paralel: true } }, tasks: [task('a', { stage: 's' })] }))
    expect([error.message.includes('`stages.s.paralel` is not a stage key (did you mean "parallel"?)'), error.message.includes('`stages.s.parallel` is missing')]).toEqual([true, true])
  })

  it('leaves pipeline plans without stages', () => {
    expect(compile({ strategy: 'pipeline', tasks: [task('a', { stage: 'x' })] }).stages).toBeUndefined()
  })
})
