import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { stageOrder } from '../../../src/runtime/plan/stages.ts'
import { createRuntime } from '../../../src/runtime/runtime.ts'

describe('stageOrder', () => {
  it('numbers stages in order of first appearance; a task without a stage is in stage ""', () => {
    const order = stageOrder({ tasks: [{ stage: 'build' }, {}, { stage: 'test' }, { stage: 'build' }] })
    expect(order.names).toEqual(['build', '', 'test'])
    expect([...order.index]).toEqual([0, 1, 2, 0])
  })

  it('is computed once per plan object', () => {
    const plan = { tasks: [{ stage: 'a' }] }
    expect(stageOrder(plan)).toBe(stageOrder(plan))
  })
})

describe('stages: validation and hybrid order', () => {
  const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'noop.mjs')
  const compileError = (plan: Plan): unknown => {
    try {
      compilePlan(plan, { baseDir: import.meta.dirname })
    } catch (error) {
      return error
    }
    return undefined
  }

  it('pipeline: a task depending on a task of a later stage is ERR_PLAN_INVALID naming both and their stages (regression: the run never settled)', () => {
    const error = compileError({
      name: 'p',
      strategy: 'pipeline',
      tasks: [
        { id: 'early', agent, stage: 'one', dependsOn: ['late'] },
        { id: 'late', agent, stage: 'two' },
      ],
    })
    expect(error).toMatchObject({ code: 'ERR_PLAN_INVALID' })
    expect((error as Error).message).toMatch(/"early" \(stage "one"\) depends on "late", which is in the later stage "two"/)
  })

  it('hybrid: the same check follows the declared stage order', () => {
    const error = compileError({
      name: 'p',
      strategy: 'hybrid',
      stages: { one: { parallel: true }, two: { parallel: true } },
      tasks: [
        { id: 'late', agent, stage: 'two' },
        { id: 'early', agent, stage: 'one', dependsOn: ['late'] },
      ],
    })
    expect(error).toMatchObject({ code: 'ERR_PLAN_INVALID' })
  })

  it('a run with strategy: pipeline given at run time checks the plan it was not compiled for', () => {
    const plan = compilePlan({ name: 'p', tasks: [{ id: 'a', agent, stage: 'one', dependsOn: ['b'] }, { id: 'b', agent, stage: 'two' }] }, { baseDir: import.meta.dirname })
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false } } })
    try {
      expect(() => runtime.run(plan, { strategy: 'pipeline' })).toThrow(expect.objectContaining({ code: 'ERR_PLAN_INVALID' }))
    } finally {
      void runtime.close()
    }
  })

  it('a run with strategy: hybrid given at run time over a plan without stages is ERR_ARGUMENT_INVALID naming the strategy', () => {
    const plan = compilePlan({ name: 'p', strategy: 'pipeline', tasks: [{ id: 'a', agent, stage: 'one' }] }, { baseDir: '.' })
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false } } })
    const named = '`strategy` "hybrid" only for a plan that declares `stages`'
    try {
      expect(() => runtime.run(plan, { strategy: 'hybrid' })).toThrow(
        expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID', message: expect.stringContaining(named) }),
      )
    } finally {
      void runtime.close()
    }
  })

  it('hybrid: stages are numbered in declared order, not order of first appearance (the journal checkpoint agrees with the scheduler)', () => {
    const order = stageOrder({ stages: { one: {}, two: {} }, tasks: [{ stage: 'two' }, { stage: 'one' }] })
    expect([...order.index]).toEqual([1, 0])
  })

  it('hybrid with the journal on, stages declared in another order than they appear, one stage empty: completes (regression: the checkpoint waited for the wrong stage)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-stages-'))
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: true, dir } } })
    try {
      const result = await runtime.run({
        name: 'h',
        strategy: 'hybrid',
        stages: { one: { parallel: true }, empty: { parallel: true }, two: { parallel: false } },
        tasks: [
          { id: 'b', agent, stage: 'two' },
          { id: 'a', agent, stage: 'one' },
        ],
      }).result
      expect(result.status).toBe('completed')
    } finally {
      await runtime.close({ force: true })
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
