import { describe, expect, it } from 'vitest'
import { linkTasks, type LinkableTask, type LinkTasksOptions } from '../../../src/runtime/plan/link-tasks.ts'

const messages: LinkTasksOptions['messages'] = {
  unknownDependency: (task, depId) => `unknown ${task} ${depId}`,
  selfDependency: (task) => `self ${task}`,
  cycle: (path) => `cycle ${path.join(' ')}`,
}

function link(tasks: readonly LinkableTask[], outside?: LinkTasksOptions['outside']) {
  const byId = new Map(tasks.map((task, index) => [task.id, index]))
  return linkTasks(tasks, { byId, messages, ...(outside ? { outside } : {}) })
}

describe('linkTasks', () => {
  it('resolves dependencies to numbers and builds the reverse edges', () => {
    const links = link([{ id: 'a' }, { id: 'b', dependsOn: ['a'] }, { id: 'c', dependsOn: ['a', 'b'] }])
    expect(links.deps).toEqual([[], [0], [0, 1]])
    expect(links.dependents).toEqual([[1, 2], [2], []])
  })

  it('counts a dependency named twice once', () => {
    const links = link([{ id: 'a' }, { id: 'b', dependsOn: ['a', 'a'] }])
    expect(links.deps[1]).toEqual([0])
    expect(links.dependents[0]).toEqual([1])
  })

  it('orders every task after its dependencies', () => {
    const order = link([{ id: 'b', dependsOn: ['a'] }, { id: 'a' }, { id: 'c' }]).order
    expect([...order].sort()).toEqual([0, 1, 2])
    expect(order.indexOf(1)).toBeLessThan(order.indexOf(0))
  })

  it('refuses an unknown dependency with ERR_PLAN_UNKNOWN_DEPENDENCY and the caller\'s message', () => {
    const refused = expect.objectContaining({ code: 'ERR_PLAN_UNKNOWN_DEPENDENCY', message: 'unknown 0 nope' })
    expect(() => link([{ id: 'a', dependsOn: ['nope'] }])).toThrow(refused)
  })

  it('refuses a task that depends on itself with ERR_PLAN_CYCLE', () => {
    expect(() => link([{ id: 'a', dependsOn: ['a'] }])).toThrow(expect.objectContaining({ code: 'ERR_PLAN_CYCLE', message: 'self 0' }))
  })

  it('refuses a cycle with ERR_PLAN_CYCLE naming its path', () => {
    const tasks = [{ id: 'a', dependsOn: ['b'] }, { id: 'b', dependsOn: ['a'] }]
    const refused = expect.objectContaining({ code: 'ERR_PLAN_CYCLE', message: expect.stringMatching(/^cycle (0 1 0|1 0 1)$/) })
    expect(() => link(tasks)).toThrow(refused)
  })

  it('resolves dependencies outside the list through `outside`, each once, and adds no reverse edge for them', () => {
    const links = link([{ id: 'x', dependsOn: ['old', 'old'] }], (depId) => (depId === 'old' ? 7 : undefined))
    expect(links.outside[0]).toEqual([7])
    expect(links.deps[0]).toEqual([])
  })

  it('lets `outside` refuse a dependency by throwing', () => {
    const refuse = () => {
      throw new Error('refused')
    }
    expect(() => link([{ id: 'x', dependsOn: ['old'] }], refuse)).toThrow('refused')
  })
})
