/**
 * Pure graph analysis over a DAG given as adjacency by index. Nodes are 0..n-1;
 * `deps[i]` lists the nodes i depends on, `dependents[i]` the nodes that depend on i.
 * Everything here is O(n + e) and iterative, so 100,000-node plans stay fast and
 * never overflow the stack.
 */

export interface Graph {
  readonly deps: readonly (readonly number[])[]
  readonly dependents: readonly (readonly number[])[]
}

/**
 * Kahn's algorithm. Returns the nodes in a topological order (ties by index, so plan
 * order is kept where the graph allows it), or `undefined` when there is a cycle.
 */
export function topologicalOrder(graph: Graph): number[] | undefined {
  const n = graph.deps.length
  const indegree = new Int32Array(n)
  for (let i = 0; i < n; i++) indegree[i] = graph.deps[i]!.length
  const order: number[] = []
  for (let i = 0; i < n; i++) if (indegree[i] === 0) order.push(i)
  for (let head = 0; head < order.length; head++) {
    for (const next of graph.dependents[order[head]!]!) {
      if (--indegree[next]! === 0) order.push(next)
    }
  }
  return order.length === n ? order : undefined
}

/**
 * Finds one cycle, listed in execution order (a dependency before its dependent) and
 * closed: `[a, b, c, a]`. Returns `undefined` for an acyclic graph.
 */
export function findCycle(graph: Graph): number[] | undefined {
  const n = graph.deps.length
  // 0 = unvisited, 1 = on the current DFS path, 2 = done
  const color = new Uint8Array(n)
  const parent = new Int32Array(n).fill(-1)
  const edgeCursor = new Int32Array(n)
  for (let root = 0; root < n; root++) {
    if (color[root] !== 0) continue
    const stack = [root]
    color[root] = 1
    while (stack.length > 0) {
      const node = stack[stack.length - 1]!
      const out = graph.dependents[node]!
      if (edgeCursor[node]! < out.length) {
        const next = out[edgeCursor[node]!++]!
        if (color[next] === 0) {
          color[next] = 1
          parent[next] = node
          stack.push(next)
        } else if (color[next] === 1) {
          const cycle = [next]
          for (let at = node; at !== next; at = parent[at]!) cycle.push(at)
          cycle.push(next)
          // Built backwards from `node` to `next`; reverse into execution order.
          return cycle.reverse()
        }
      } else {
        color[node] = 2
        stack.pop()
      }
    }
  }
  return undefined
}

/** Dependency level of each node: 0 for roots, else 1 + the deepest dependency. */
export function dependencyLevels(graph: Graph, order: readonly number[]): Int32Array {
  const level = new Int32Array(graph.deps.length)
  for (const node of order) {
    let deepest = -1
    for (const dep of graph.deps[node]!) if (level[dep]! > deepest) deepest = level[dep]!
    level[node] = deepest + 1
  }
  return level
}

/**
 * b-level of each node: the longest path from the node's start to the end of the graph,
 * including its own duration. The classic list-scheduling priority (critical path first).
 */
export function bottomLevels(
  graph: Graph,
  order: readonly number[],
  duration: (node: number) => number,
): Float64Array {
  const blevel = new Float64Array(graph.deps.length)
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k]!
    let longest = 0
    for (const next of graph.dependents[node]!) if (blevel[next]! > longest) longest = blevel[next]!
    blevel[node] = duration(node) + longest
  }
  return blevel
}

export interface CriticalPath {
  readonly lengthMs: number
  /** Node indices along the path, first to last. */
  readonly nodes: readonly number[]
}

/** The longest dependency chain by duration. */
export function criticalPath(
  graph: Graph,
  order: readonly number[],
  duration: (node: number) => number,
): CriticalPath {
  const n = graph.deps.length
  if (n === 0) return { lengthMs: 0, nodes: [] }
  const finish = new Float64Array(n)
  const via = new Int32Array(n).fill(-1)
  let last = order[0]!
  // Indexed loops: this runs once per run over every task and edge, mostly before V8 optimizes
  // it, and a for-of allocated an iterator result per step (≈ 200 bytes per task at a run's end).
  for (let k = 0; k < order.length; k++) {
    const node = order[k]!
    const deps = graph.deps[node]!
    let start = 0
    for (let j = 0; j < deps.length; j++) {
      const dep = deps[j]!
      if (finish[dep]! > start || (via[node] === -1 && finish[dep] === start)) {
        start = finish[dep]!
        via[node] = dep
      }
    }
    finish[node] = start + duration(node)
    if (finish[node]! > finish[last]!) last = node
  }
  const nodes: number[] = []
  for (let at = last; at !== -1; at = via[at]!) nodes.push(at)
  return { lengthMs: finish[last]!, nodes: nodes.reverse() }
}

/** Nodes reachable from `from` along dependents (not including `from`). */
export function descendants(graph: Graph, from: number): number[] {
  const seen = new Set<number>([from])
  const out: number[] = []
  const stack = [from]
  while (stack.length > 0) {
    for (const next of graph.dependents[stack.pop()!]!) {
      if (!seen.has(next)) {
        seen.add(next)
        out.push(next)
        stack.push(next)
      }
    }
  }
  return out
}
