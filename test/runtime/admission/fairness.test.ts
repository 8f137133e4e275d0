import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Dispatcher, type Dispatchable } from '../../../src/runtime/admission/dispatcher.ts'
import { isTroupeError } from '../../../src/runtime/core/errors.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agents = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')
const sleepPlan = (name: string, count: number, ms: number): Plan => ({
  name,
  agents: { sleep: join(agents, 'sleep.mjs') },
  tasks: Array.from({ length: count }, (_, i) => ({ id: `${name}-${i}`, agent: 'sleep', input: { ms } })),
})

/** A run with `ready` tasks that start at once and never finish: records the start order. */
function source(name: string, ready: number, log: string[]): Dispatchable {
  let left = ready
  return {
    tryStartOne() {
      if (left === 0) return false
      left--
      log.push(name)
      return true
    },
  }
}

describe('Dispatcher', () => {
  it('hands slots to runs in turn, one task each', () => {
    const log: string[] = []
    const dispatcher = new Dispatcher(4)
    dispatcher.add(source('big', 1000, log))
    dispatcher.add(source('small', 2, log))
    dispatcher.pump()
    expect(log).toEqual(['big', 'small', 'big', 'small'])
  })

  it('gives a run’s unused turn to the others', () => {
    const log: string[] = []
    const dispatcher = new Dispatcher(3)
    dispatcher.add(source('empty', 0, log))
    dispatcher.add(source('busy', 10, log))
    dispatcher.pump()
    expect(log).toEqual(['busy', 'busy', 'busy'])
  })
})

describe('runs sharing one runtime', () => {
  let runtime: Runtime | undefined

  afterEach(async () => {
    await runtime?.close({ force: true })
    runtime = undefined
  })

  it('does not starve a small run behind a big one', async () => {
    runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 2, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const big = runtime.run(sleepPlan('big', 40, 20))
    const small = runtime.run(sleepPlan('small', 2, 20))
    let bigDone = 0
    big.on('task:state', (e) => e.state === 'COMPLETED' && bigDone++)
    await small.result
    const bigDoneWhenSmallEnded = bigDone
    await big.result
    // Strictly FIFO, the small run would wait for all 40; round-robin lets it finish within a few.
    expect(bigDoneWhenSmallEnded).toBeLessThan(10)
  })

  it('runs ready tasks strictly by priority with maxParallel 1', async () => {
    runtime = createRuntime({ config: { maxParallel: 1, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const plan: Plan = {
      agents: { echo: join(agents, 'echo.mjs') },
      tasks: [
        { id: 'low', agent: 'echo', priority: 'low' },
        { id: 'medium', agent: 'echo' },
        { id: 'high', agent: 'echo', priority: 'high' },
        { id: 'critical', agent: 'echo', priority: 'critical' },
      ],
    }
    const run = runtime.run(plan)
    const started: string[] = []
    run.on('task:state', (e) => e.state === 'RUNNING' && started.push(e.taskId))
    await run.result
    expect(started).toEqual(['critical', 'high', 'medium', 'low'])
  })

  it('rejects a run with ERR_QUEUE_FULL when config.maxQueuedTasks would be exceeded', () => {
    runtime = createRuntime({ config: { maxParallel: 1, maxQueuedTasks: 5, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    runtime.run(sleepPlan('first', 4, 50))
    let error: unknown
    try {
      runtime.run(sleepPlan('second', 2, 0))
    } catch (caught) {
      error = caught
    }
    expect(isTroupeError(error, 'ERR_QUEUE_FULL')).toBe(true)
  })

  it('accepts the run again once the runs in flight have ended', async () => {
    runtime = createRuntime({ config: { maxParallel: 1, maxQueuedTasks: 5, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    await runtime.run(sleepPlan('first', 4, 0)).result
    const result = await runtime.run(sleepPlan('second', 2, 0)).result
    expect(result.status).toBe('completed')
  })
})
