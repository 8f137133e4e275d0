import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DemandBook } from '../../../src/runtime/governor/demand.ts'
import { FitGate, type HoldNotice } from '../../../src/runtime/admission/fit-gate.ts'
import { Governor, type ResourceProbe } from '../../../src/runtime/governor/governor.ts'
import type { ResourceReading } from '../../../src/runtime/governor/governor-policy.ts'
import { processTree, treeTicksBetween } from '../../../src/runtime/governor/proc-stats.ts'
import type { TaskStateEvent } from '../../../src/runtime/report/events.ts'
import type { CompiledTask } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import { testClock } from '../../helpers/test-clock.ts'
import { peakRunning } from '../../helpers/task-events.ts'

const sleep = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'sleep.mjs')

/** A task as the gate sees it; `resources` as the plan engineer's schema will carry it. */
const task = (id: string, agent: string, resources?: { cpu: number; memoryMb?: number }) =>
  ({ id, agent, agentSpec: { kind: 'module' }, spec: { id, agent, ...(resources ? { resources } : {}) } }) as unknown as CompiledTask

const reading = (cpuPercent: number, ownCpuPercent: number, memoryPercent = 10): ResourceReading => ({ cpuPercent, ownCpuPercent, memoryPercent, memoryUsedMb: 1000 })

const machine = { cores: 2, memoryMb: 8000 }

/**
 * A gate on busy cores that ran one attempt (`taskId`) of an unmeasured agent through a whole
 * reading in which troupe used `ownCpuPercent` of the machine: 0.5 says it waits, 40 CPU-bound.
 */
async function afterOneReading(taskId: string, agent: string, ownCpuPercent: number): Promise<{ gate: FitGate; clock: ReturnType<typeof testClock> }> {
  const clock = testClock()
  const gate = new FitGate(new DemandBook(), clock, machine, () => {})
  gate.observe(reading(100, 0), 0)
  gate.tryAcquire('r', task(taskId, agent))
  await clock.advance(100)
  gate.observe(reading(100, 0), 100)
  await clock.advance(100)
  gate.observe(reading(100, ownCpuPercent), 200)
  return { gate, clock }
}

describe('FitGate (injected clock and readings)', () => {

  it('holds a second declared CPU-bound task while others use both cores, and says why', () => {
    const notices: HoldNotice[] = []
    const gate = new FitGate(new DemandBook(), testClock(), machine, (n) => notices.push(n))
    gate.observe(reading(100, 0), 0)
    expect(gate.tryAcquire('r', task('a', 'analyse-file', { cpu: 1 }))).toBe(true)
    expect(gate.tryAcquire('r', task('b', 'analyse-file', { cpu: 1 }))).toBe(false)
    expect(notices.map((n) => n.message)).toEqual(['held: analyse-file needs ~1.0 CPU, 0.0 free'])
  })

  it('a task waiting for tasks it spawned holds no CPU: its children fit (regression: a parked parent could hold them back forever)', () => {
    const gate = new FitGate(new DemandBook(), testClock(), machine, () => {})
    gate.observe(reading(100, 0), 0)
    const parent = task('lead', 'orchestrator', { cpu: 1 })
    expect(gate.tryAcquire('r', parent)).toBe(true)
    expect(gate.tryAcquire('r', task('c1', 'analyse-file', { cpu: 1 }))).toBe(false)
    expect(gate.suspend('r', parent)).toBe(true)
    expect(gate.reservedCpu).toBe(0)
    expect(gate.tryAcquire('r', task('c1', 'analyse-file', { cpu: 1 }))).toBe(true)
    gate.release('r', task('c1', 'analyse-file'))
    expect(gate.resume('r', parent)).toBe(true)
    expect(gate.reservedCpu).toBe(1)
  })

  describe('a refusal reused for the agent until something it depends on changes', () => {
    /** Busy cores, one declared CPU-bound attempt running: the next of its agent is refused. */
    const refused = () => {
      const demand = new DemandBook()
      const gate = new FitGate(demand, testClock(), machine, () => {})
      gate.observe(reading(100, 0), 0)
      gate.tryAcquire('r', task('a', 'analyse', { cpu: 1 }))
      expect(gate.tryAcquire('r', task('b', 'analyse', { cpu: 1 }))).toBe(false)
      return { gate, demand }
    }

    it('admits once the running attempt is released', () => {
      const { gate } = refused()
      gate.release('r', task('a', 'analyse'))
      expect(gate.tryAcquire('r', task('b', 'analyse', { cpu: 1 }))).toBe(true)
    })

    it('admits once a reading shows the other processes gone', () => {
      const { gate } = refused()
      gate.observe(reading(50, 50), 100)
      expect(gate.tryAcquire('r', task('b', 'analyse', { cpu: 1 }))).toBe(true)
    })

    it('admits once the agent is measured to wait', () => {
      const { gate, demand } = refused()
      demand.record('analyse', { cpuMs: 10, wallMs: 1_000 })
      expect(gate.tryAcquire('r', task('b', 'analyse', { cpu: 1 }))).toBe(true)
    })

    it('refuses the agent\'s next task the same way meanwhile, and another agent that fits gets through', () => {
      const { gate } = refused()
      expect([gate.tryAcquire('r', task('c', 'analyse', { cpu: 1 })), gate.tryAcquire('r', task('d', 'llm', { cpu: 0.01 }))]).toEqual([false, true])
    })
  })

  it('lets declared waiting agents through while others use both cores', () => {
    const gate = new FitGate(new DemandBook(), testClock(), machine, () => {})
    gate.observe(reading(100, 0), 0)
    const admitted = Array.from({ length: 20 }, (_, i) => gate.tryAcquire('r', task(`t${i}`, 'llm', { cpu: 0.01 })))
    expect(admitted.every(Boolean)).toBe(true)
  })

  it('counts time held for CPU until a task starts again', async () => {
    const clock = testClock()
    const gate = new FitGate(new DemandBook(), clock, machine, () => {})
    gate.observe(reading(100, 0), 0)
    gate.tryAcquire('r', task('a', 'cc', { cpu: 1 }))
    gate.tryAcquire('r', task('b', 'cc', { cpu: 1 }))
    await clock.advance(300)
    gate.release('r', task('a', 'cc'))
    expect(gate.heldMs()).toEqual({ cpu: 300, memory: 0 })
  })

  it('assumes an unmeasured agent is CPU-bound until a reading taken while it ran shows it waits', async () => {
    const clock = testClock()
    const gate = new FitGate(new DemandBook(), clock, machine, () => {})
    gate.observe(reading(100, 0), 0)
    expect(gate.tryAcquire('r', task('a', 'new'))).toBe(true)
    expect(gate.tryAcquire('r', task('b', 'new'))).toBe(false)
    expect(gate.learning).toBe(true)
    await clock.advance(100)
    gate.observe(reading(100, 0), 100)
    await clock.advance(100)
    gate.observe(reading(100, 1), 200)
    expect(gate.learning).toBe(false)
    expect(gate.tryAcquire('r', task('b', 'new'))).toBe(true)
  })

  it('admits the rest of an unmeasured agent at once after one reading shows it waiting (40 sleepers started one per two readings)', async () => {
    const { gate } = await afterOneReading('t0', 'sleep', 0.5)
    const admitted = Array.from({ length: 39 }, (_, i) => gate.tryAcquire('r', task(`t${i + 1}`, 'sleep')))
    expect(admitted.every(Boolean)).toBe(true)
  })

  it("does not judge a second unmeasured agent by the first one's reading", async () => {
    const { gate } = await afterOneReading('a', 'sleep', 0.5)
    expect([gate.waits('sleep'), gate.waits('analyse')]).toEqual([true, false])
    expect(gate.tryAcquire('r', task('b', 'analyse'))).toBe(true)
    expect(gate.tryAcquire('r', task('c', 'analyse'))).toBe(false)
  })

  it('keeps sampling fast while the only reading of an unmeasured agent says CPU-bound', async () => {
    const { gate } = await afterOneReading('a', 'new', 40)
    expect([gate.waits('new'), gate.learning]).toEqual([false, true])
  })

  it('starts one attempt of an agent never seen while CPU-bound ones fill the cores, to measure it', () => {
    const gate = new FitGate(new DemandBook(), testClock(), machine, () => {})
    gate.observe(reading(100, 100), 0)
    gate.tryAcquire('r', task('h0', 'hash', { cpu: 1 }))
    gate.tryAcquire('r', task('h1', 'hash', { cpu: 1 }))
    expect([gate.tryAcquire('r', task('l0', 'llm')), gate.tryAcquire('r', task('l1', 'llm'))]).toEqual([true, false])
  })

  it('samples within the learning interval, not the regular one, once it starts an attempt it must learn about', async () => {
    const clock = testClock()
    let samples = 0
    const probe: ResourceProbe = { sample: async () => (samples++, reading(10, 0)) }
    let governor: Governor | undefined
    const gate = new FitGate(new DemandBook(), clock, machine, () => {}, () => governor?.sampleSoon())
    const policy = { mode: 'threshold', cpu: { throttlePercent: 90, resumePercent: 75, targetPercent: 80 }, memory: { throttlePercent: 90, resumePercent: 80 } } as const
    governor = new Governor({ probe, clock, policy, sampleIntervalMs: 1000, capacity: 8, initialLimit: 8, inFlight: () => 0, onChange: () => {}, fit: gate })
    governor.activate()
    await new Promise((resolve) => setImmediate(resolve))
    gate.tryAcquire('r', task('a', 'new'))
    await clock.advance(100)
    expect(samples).toBe(2)
    governor.close()
  })

  it('goes back to the regular pace once a CPU-bound verdict has held for a second', async () => {
    const { gate, clock } = await afterOneReading('a', 'new', 40)
    await clock.advance(1000)
    expect([gate.waits('new'), gate.learning]).toEqual([false, false])
  })

  it('says a declared waiting agent waits, and one never seen does not', () => {
    const gate = new FitGate(new DemandBook(), testClock(), machine, () => {})
    gate.tryAcquire('r', task('a', 'llm', { cpu: 0.01 }))
    expect([gate.waits('llm'), gate.waits('unknown')]).toEqual([true, false])
  })
})

describe("troupe's own load", () => {
  const children: ReturnType<typeof spawn>[] = []
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL')
  })

  it.skipIf(process.platform !== 'linux')('counts the CPU of a busy child process as troupe’s', async () => {
    const before = processTree()!
    // Busy for 300 ms of its own CPU time, not of wall time: on a loaded machine 400 ms of wall
    // time held less than 0.1 s of CPU (regression: failed under CI load).
    const busy = 'const cpu = () => { const u = process.cpuUsage(); return u.user + u.system }; while (cpu() < 300_000) {}'
    const child = spawn(process.execPath, ['-e', busy], { stdio: 'ignore' })
    children.push(child)
    await new Promise((resolve) => child.once('exit', resolve))
    const after = processTree()!
    // A reaped child's CPU shows in this process's cutime: at least 0.1 s of ticks (100 Hz).
    expect(treeTicksBetween(before, after)).toBeGreaterThanOrEqual(10)
  })
})

describe('Governor in a runtime (injected probe, real workers)', () => {
  let runtime: Runtime | undefined
  afterEach(async () => {
    await runtime?.close({ force: true })
    runtime = undefined
  })

  /** Answers with `next()`; `initial` is the synchronous reading taken at runtime start. */
  const probeOf = (next: () => ResourceReading): ResourceProbe => ({ sample: async () => next(), initial: next })

  it('no blind start: four tasks run one at a time from the first when memory is over the threshold at start', async () => {
    runtime = createRuntime({ config: { maxParallel: 4, governor: { sampleIntervalMs: 100 } }, probe: probeOf(() => reading(10, 0, 95)) })
    const events: TaskStateEvent[] = []
    runtime.on('task:state', (e) => events.push(e))
    const tasks = ['a', 'b', 'c', 'd'].map((id) => ({ id, agent: 'sleep', input: { ms: 100 } }))
    const result = await runtime.run({ name: 'mem', agents: { sleep }, tasks }).result
    expect(peakRunning(events)).toBe(1)
    expect(result.governor).toMatchObject({ throttleEvents: 1 })
  })

  it('sleeping agents keep flowing while other programs use every core', async () => {
    runtime = createRuntime({ config: { maxParallel: 8, governor: { sampleIntervalMs: 50 } }, probe: probeOf(() => reading(100, 0)) })
    const events: TaskStateEvent[] = []
    runtime.on('task:state', (e) => events.push(e))
    const tasks = Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, agent: 'sleep', input: { ms: 600 } }))
    const result = await runtime.run({ name: 'io', agents: { sleep }, tasks }).result
    expect(result.status).toBe('completed')
    expect(peakRunning(events)).toBeGreaterThanOrEqual(4)
    // Far from one core: a new thread's first attempt also pays for loading the agent module.
    expect(result.governor!.agents!['sleep']!.cpu).toBeLessThan(0.5)
  })

  it('starts a burst of unmeasured sleepers together once a reading shows them waiting', async () => {
    runtime = createRuntime({ config: { maxParallel: 16, governor: { sampleIntervalMs: 50 } }, probe: probeOf(() => reading(100, 0)) })
    const events: TaskStateEvent[] = []
    runtime.on('task:state', (e) => events.push(e))
    const tasks = Array.from({ length: 16 }, (_, i) => ({ id: `t${i}`, agent: 'sleep', input: { ms: 600 } }))
    const result = await runtime.run({ name: 'burst', agents: { sleep }, tasks }).result
    expect([result.status, peakRunning(events)]).toEqual(['completed', 16])
  })
})
