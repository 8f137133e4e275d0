import type { Plan } from '../index.ts'
import { benchAgentFile } from './agent-file.ts'
import type { ReferenceGraph } from './data/reference-graph.ts'

/**
 * A reference task graph as a real plan: every task is a simulated agent that waits its
 * duration (data units x `unitMs`), and carries that duration as `estimateMs` so the real
 * scheduler orders ready tasks exactly as the simulation does.
 */
export function referencePlan(graph: ReferenceGraph, unitMs: number): Plan {
  const ids = graph.ids.map((id) => `t${id}`)
  return {
    name: `ref-${graph.name.replace(/\W+/g, '-')}`,
    agents: { llm: benchAgentFile('simulated-llm') },
    tasks: ids.map((id, i) => ({
      id,
      agent: 'llm',
      input: { ms: graph.durations[i]! * unitMs },
      estimateMs: graph.durations[i]! * unitMs,
      dependsOn: graph.plan.deps[i]!.map((dep) => ids[dep]!),
    })),
  }
}

/** Total work and critical-path length of a reference graph, in data units. */
export function graphBounds(graph: ReferenceGraph): { readonly work: number; readonly criticalPath: number } {
  const finish = new Float64Array(graph.durations.length)
  let work = 0
  let criticalPath = 0
  for (const task of graph.plan.order) {
    let ready = 0
    for (const dep of graph.plan.deps[task]!) ready = Math.max(ready, finish[dep]!)
    finish[task] = ready + graph.durations[task]!
    criticalPath = Math.max(criticalPath, finish[task]!)
    work += graph.durations[task]!
  }
  return { work, criticalPath }
}
