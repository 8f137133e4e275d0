import { describe, expect, it } from 'vitest'
import { bottomLevels, criticalPath, dependencyLevels, findCycle, topologicalOrder } from '../../../src/runtime/plan/graph.ts'

/** Builds a graph from edges [from, to] meaning "to depends on from". */
function graph(n: number, edges: [number, number][]) {
  const deps: number[][] = Array.from({ length: n }, () => [])
  const dependents: number[][] = Array.from({ length: n }, () => [])
  for (const [from, to] of edges) {
    deps[to]!.push(from)
    dependents[from]!.push(to)
  }
  return { deps, dependents }
}

describe('graph', () => {
  const diamond = graph(4, [[0, 1], [0, 2], [1, 3], [2, 3]])

  it('orders a diamond topologically, keeping index order among ties', () => {
    expect(topologicalOrder(diamond)).toEqual([0, 1, 2, 3])
  })

  it('returns undefined for a cyclic graph', () => {
    expect(topologicalOrder(graph(3, [[0, 1], [1, 2], [2, 0]]))).toBeUndefined()
  })

  it('finds a cycle as a closed path in execution order', () => {
    const cycle = findCycle(graph(4, [[3, 0], [0, 1], [1, 2], [2, 0]]))
    expect(cycle).toEqual([0, 1, 2, 0])
  })

  it('finds no cycle in a DAG', () => {
    expect(findCycle(diamond)).toBeUndefined()
  })

  it('computes dependency levels', () => {
    expect([...dependencyLevels(diamond, [0, 1, 2, 3])]).toEqual([0, 1, 1, 2])
  })

  it('computes b-levels as the longest path to the end including the node', () => {
    const durations = [1, 5, 2, 1]
    expect([...bottomLevels(diamond, [0, 1, 2, 3], (i) => durations[i]!)]).toEqual([7, 6, 3, 1])
  })

  it('finds the critical path through the longest branch', () => {
    const durations = [1, 5, 2, 1]
    expect(criticalPath(diamond, [0, 1, 2, 3], (i) => durations[i]!)).toEqual({ lengthMs: 7, nodes: [0, 1, 3] })
  })

  it('handles 100,000 nodes in a chain without overflowing the stack', () => {
    const n = 100_000
    const edges: [number, number][] = []
    for (let i = 1; i < n; i++) edges.push([i - 1, i])
    const g = graph(n, edges)
    expect(topologicalOrder(g)?.length).toBe(n)
    expect(findCycle(g)).toBeUndefined()
  })
})
