import v8 from 'node:v8'
import vm from 'node:vm'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createRuntime } from '../../src/runtime/runtime.ts'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const agent = join(import.meta.dirname, '..', 'fixtures', 'agents', 'noop.mjs')
const runtime = createRuntime({ config: { maxParallel: 8, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
afterAll(() => runtime.close({ force: true }))

const plan = (round: number, run: number) => ({ name: `m${round}-${run}`, tasks: Array.from({ length: 500 }, (_, i) => ({ id: `t${i}`, agent })) })

function heapAfterGc(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

describe('a long-lived runtime', () => {
  it('20 runs × 500 tasks × 5 rounds: heap after GC stays within 2 MB of round 1 (regression: ~230 bytes per task never freed)', async () => {
    const heaps: number[] = []
    for (let round = 0; round < 5; round++) {
      for (let run = 0; run < 20; run++) expect((await runtime.run(plan(round, run)).result).status).toBe('completed')
      heaps.push(heapAfterGc())
    }
    const growth = Math.max(...heaps.slice(1).map((h) => h - heaps[0]!))
    expect(growth).toBeLessThan(2 * 1024 * 1024)
  }, 180_000)
})
