import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TaskStateEvent } from '../../src/runtime/report/events.ts'
import type { Plan } from '../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({ config: { pool: { minThreads: 2, maxThreads: 3 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
})

afterAll(async () => {
  await runtime.close()
})

/** A random DAG: task i may depend on any earlier task; some tasks fail. */
const dagArbitrary = fc.integer({ min: 1, max: 8 }).chain((n) =>
  fc.record({
    deps: fc.tuple(...Array.from({ length: n }, (_, i) => fc.subarray(Array.from({ length: i }, (_, j) => j)))),
    // About one task in four fails.
    fails: fc.array(fc.nat({ max: 3 }).map((x) => x === 0), { minLength: n, maxLength: n }),
    strategy: fc.constantFrom('concurrent' as const, 'waves' as const, 'sequential' as const),
    maxParallel: fc.integer({ min: 1, max: 3 }),
  }),
)

describe('any DAG with random failures', () => {
  it('ends every task, starts none before its dependencies, skips exactly those with an incomplete dependency, and adds up', async () => {
    await fc.assert(
      fc.asyncProperty(dagArbitrary, async ({ deps, fails, strategy, maxParallel }) => {
        const id = (i: number) => `t${i}`
        const plan: Plan = {
          name: 'random',
          strategy,
          maxParallel,
          tasks: deps.map((d, i) => ({
            id: id(i),
            agent: join(agents, fails[i] ? 'throw.mjs' : 'noop.mjs'),
            retries: 0,
            dependsOn: d.map(id),
          })),
        }
        const run = runtime.run(plan)
        const events: TaskStateEvent[] = []
        run.on('task:state', (e) => events.push(e))
        const result = await run.result

        const completedAt = new Map<string, number>()
        events.forEach((e, order) => {
          if (e.state === 'COMPLETED') completedAt.set(e.taskId, order)
          if (e.state === 'RUNNING') {
            for (const dep of deps[Number(e.taskId.slice(1))]!) {
              expect(completedAt.get(id(dep)), `${e.taskId} started before ${id(dep)} completed`).toBeLessThan(order)
            }
          }
        })

        const state = (i: number) => result.tasks[id(i)]!.state
        for (let i = 0; i < deps.length; i++) {
          expect(['COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED']).toContain(state(i))
          const incompleteDep = deps[i]!.some((d) => state(d) !== 'COMPLETED')
          expect(state(i) === 'SKIPPED', `${id(i)} is ${state(i)}`).toBe(incompleteDep)
          if (!incompleteDep) expect(state(i)).toBe(fails[i] ? 'FAILED' : 'COMPLETED')
        }

        const { tasks, completed, failed, skipped, cancelled } = result.totals
        expect(tasks).toBe(deps.length)
        expect(completed + failed + skipped + cancelled).toBe(tasks)
        expect(completed).toBe(Object.values(result.tasks).filter((t) => t.state === 'COMPLETED').length)
        expect(result.status).toBe(completed === tasks ? 'completed' : 'failed')
      }),
      { numRuns: 30 },
    )
  })
})
