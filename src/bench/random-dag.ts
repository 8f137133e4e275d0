import type { Plan } from '../index.ts'

/**
 * A seeded random DAG plan of `tasks` tasks of one agent: each task after the first depends
 * on up to `edgesPerTask` distinct earlier tasks, drawn uniformly (so about that many edges
 * per task, and a depth that grows slowly with size). Same seed, same plan.
 */
export function randomDagPlan(options: { tasks: number; edgesPerTask: number; agent: string; seed?: number; name?: string }): Plan {
  const random = mulberry32(options.seed ?? 1)
  const tasks = new Array<{ id: string; agent: string; dependsOn: string[] }>(options.tasks)
  const picked = new Set<number>()
  for (let i = 0; i < options.tasks; i++) {
    const want = Math.min(i, options.edgesPerTask)
    picked.clear()
    while (picked.size < want) picked.add(Math.floor(random() * i))
    tasks[i] = { id: `t${i}`, agent: 'work', dependsOn: [...picked].map((d) => `t${d}`) }
  }
  return { name: options.name ?? `random-dag-${options.tasks}`, agents: { work: options.agent }, tasks }
}

/** A tiny, fast, seedable PRNG (mulberry32, public domain); returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
