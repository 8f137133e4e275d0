import { describe, expect, it } from 'vitest'
import { stageOrder } from '../../../src/runtime/plan/stages.ts'

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
