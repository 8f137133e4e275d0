import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { GovernorEvent, TaskStateEvent } from '../../../src/runtime/report/events.ts'
import { Governor, type GovernorChange, type ResourceProbe } from '../../../src/runtime/governor/governor.ts'
import type { GovernorPolicy, ResourceReading } from '../../../src/runtime/governor/governor-policy.ts'
import type { TroupeConfig } from '../../../src/runtime/core/config.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import type { Clock } from '../../../src/runtime/core/clock.ts'
import { testClock } from '../../helpers/test-clock.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import { SystemProbe } from '../../../src/runtime/governor/system-probe.ts'
import { peakRunning } from '../../helpers/task-events.ts'

const sleep = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'sleep.mjs')

const reading = (cpuPercent: number, memoryPercent = 10): ResourceReading => ({ cpuPercent, memoryPercent, memoryUsedMb: 1000 })

/** A probe that answers at once with whatever `next` says; counts its samples. */
function fixedProbe(next: () => ResourceReading): ResourceProbe & { samples: number } {
  const probe = {
    samples: 0,
    sample: async () => {
      probe.samples++
      return next()
    },
  }
  return probe
}


const policy: GovernorPolicy = {
  mode: 'threshold',
  cpu: { throttlePercent: 90, resumePercent: 75, targetPercent: 80 },
  memory: { throttlePercent: 90, resumePercent: 80 },
}

function governorWith(probe: ResourceProbe, clock: Clock, overrides: Partial<GovernorPolicy> = {}) {
  const changes: GovernorChange[] = []
  let inFlight = 0
  const governor = new Governor({
    probe,
    clock,
    policy: { ...policy, ...overrides },
    sampleIntervalMs: 100,
    capacity: 8,
    initialLimit: 4,
    inFlight: () => inFlight,
    onChange: (change) => changes.push(change),
  })
  return { governor, changes, setInFlight: (n: number) => (inFlight = n) }
}

const flush = () => new Promise((resolve) => setImmediate(resolve))

describe('Governor (injected probe and clock)', () => {
  it('samples once on activation and then every sampleIntervalMs', async () => {
    const clock = testClock()
    const probe = fixedProbe(() => reading(10))
    const { governor } = governorWith(probe, clock)
    governor.activate()
    await flush()
    expect(probe.samples).toBe(1)
    await clock.advance(350)
    expect(probe.samples).toBe(4)
    governor.close()
  })

  it('stops sampling when deactivated', async () => {
    const clock = testClock()
    const probe = fixedProbe(() => reading(10))
    const { governor } = governorWith(probe, clock)
    governor.activate()
    await flush()
    governor.deactivate()
    await clock.advance(1000)
    expect(probe.samples).toBe(1)
    expect(clock.pending()).toBe(0)
  })

  it('reports throttled with the reason and readings, then resumed below the resume thresholds', async () => {
    const clock = testClock()
    let cpu = 95
    const { governor, changes } = governorWith(fixedProbe(() => reading(cpu)), clock)
    governor.activate()
    await flush()
    expect(governor.admissionLimit).toBe(0)
    cpu = 80
    await clock.advance(100)
    expect(governor.throttled).toBe(true)
    cpu = 50
    await clock.advance(100)
    expect(governor.admissionLimit).toBe(Infinity)
    expect(changes.filter((c) => c.type !== 'governor:sample')).toEqual([
      { type: 'governor:throttled', event: { reason: 'cpu', cpuPercent: 95, memoryPercent: 10, memoryUsedMb: 1000, at: 0 } },
      { type: 'governor:resumed', event: { reason: 'cpu', cpuPercent: 50, memoryPercent: 10, memoryUsedMb: 1000, at: 200 } },
    ])
    governor.close()
  })

  it('reports every reading with the admission limit it led to', async () => {
    const clock = testClock()
    let cpu = 95
    const { governor, changes } = governorWith(fixedProbe(() => reading(cpu)), clock)
    governor.activate()
    await flush()
    cpu = 10
    await clock.advance(100)
    expect(changes.filter((c) => c.type === 'governor:sample').map((c) => c.event)).toEqual([
      { cpuPercent: 95, memoryPercent: 10, memoryUsedMb: 1000, throttled: 'cpu', limit: 0, at: 0 },
      { cpuPercent: 10, memoryPercent: 10, memoryUsedMb: 1000, throttled: undefined, limit: Infinity, at: 100 },
    ])
    governor.close()
  })

  it("a run's report counts its throttled time, throttle periods, samples and peaks", async () => {
    const clock = testClock()
    const cpu = [95, 95, 50, 50, 95, 50]
    let i = 0
    const { governor } = governorWith(fixedProbe(() => reading(cpu[Math.min(i++, cpu.length - 1)]!)), clock)
    const tracker = governor.track()
    governor.activate()
    await flush()
    await clock.advance(550)
    expect(tracker.end()).toEqual({ mode: 'threshold', throttledMs: 300, throttleEvents: 2, peakCpuPercent: 95, peakMemoryMb: 1000, samples: 6 })
    governor.close()
  })

  it('adaptive mode records the limit it chose over time', async () => {
    const clock = testClock()
    const cpu = [85, 85, 40, 40]
    let i = 0
    const { governor, setInFlight } = governorWith(fixedProbe(() => reading(cpu[Math.min(i++, cpu.length - 1)]!)), clock, {
      mode: 'adaptive',
      cpu: { throttlePercent: 100, resumePercent: 100, targetPercent: 80 },
    })
    setInFlight(8)
    const tracker = governor.track()
    governor.activate()
    await flush()
    await clock.advance(300)
    expect(tracker.end().concurrency).toEqual([
      { at: 0, limit: 4 },
      { at: 0, limit: 2 },
      { at: 100, limit: 1 },
      { at: 200, limit: 2 },
      { at: 300, limit: 3 },
    ])
    governor.close()
  })

  it('keeps the last decision and goes on sampling when the probe fails', async () => {
    const clock = testClock()
    let fail = false
    const probe = fixedProbe(() => {
      if (fail) throw new Error('probe down')
      return reading(95)
    })
    const { governor } = governorWith(probe, clock)
    governor.activate()
    await flush()
    fail = true
    await clock.advance(200)
    expect(governor.throttled).toBe(true)
    expect(probe.samples).toBe(3)
    governor.close()
  })

  it('stays quiet when a sample in flight fails because the governor was closed', async () => {
    let fail!: (error: Error) => void
    const probe: ResourceProbe = { sample: () => new Promise((_, reject) => (fail = reject)) }
    const { governor } = governorWith(probe, testClock())
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    governor.activate()
    governor.close()
    fail(new Error('the system probe was closed'))
    await new Promise((resolve) => setTimeout(resolve, 10))
    process.off('warning', onWarning)
    expect(warnings.filter((w) => w.name === 'TroupeGovernorWarning')).toEqual([])
  })
})

// ---- on a runtime, with real worker threads ----

const fourSleeps = (ms: number): Plan => ({
  name: 'four-sleeps',
  tasks: ['a', 'b', 'c', 'd'].map((id) => ({ id, agent: sleep, input: { ms } })),
})

let runtime: Runtime | undefined

afterEach(async () => {
  await runtime?.close()
  runtime = undefined
})

async function runFourSleeps(config: TroupeConfig, probe?: ResourceProbe) {
  runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 4, pool: { minThreads: 4, maxThreads: 4 }, ...config }, ...(probe ? { probe } : {}) })
  const run = runtime.run(fourSleeps(200))
  const events: TaskStateEvent[] = []
  const throttled: GovernorEvent[] = []
  const runtimeThrottled: GovernorEvent[] = []
  run.on('task:state', (e) => events.push(e))
  run.on('governor:throttled', (e) => throttled.push(e))
  runtime.on('governor:throttled', (e) => runtimeThrottled.push(e))
  const result: RunResult = await run.result
  return { result, events, throttled, runtimeThrottled }
}

describe('the governor on a runtime', () => {
  it('runs 4 independent 200 ms tasks one at a time while readings stay above the thresholds', async () => {
    const { result, events } = await runFourSleeps({ governor: { sampleIntervalMs: 20 } }, fixedProbe(() => reading(99, 99)))
    expect(result.totals.completed).toBe(4)
    expect(peakRunning(events)).toBe(1)
  })

  it('reports the throttling in RunResult.governor', async () => {
    const { result } = await runFourSleeps({ governor: { sampleIntervalMs: 20 } }, fixedProbe(() => reading(99, 99)))
    expect(result.governor).toMatchObject({ mode: 'threshold', throttleEvents: 1, peakCpuPercent: 99, peakMemoryMb: 1000 })
    expect(result.governor!.samples).toBeGreaterThan(0)
    expect(result.governor!.throttledMs).toBeGreaterThan(0)
  })

  it('emits governor:throttled on the runtime and on the run', async () => {
    const { throttled, runtimeThrottled } = await runFourSleeps({ governor: { sampleIntervalMs: 20 } }, fixedProbe(() => reading(99)))
    expect(throttled.map((e) => e.reason)).toEqual(['cpu'])
    expect(runtimeThrottled.map((e) => e.reason)).toEqual(['cpu'])
  })

  it('lets the same tasks overlap with the default thresholds and a quiet machine', async () => {
    const { result, events } = await runFourSleeps({}, fixedProbe(() => reading(20, 20)))
    expect(result.totals.completed).toBe(4)
    expect(peakRunning(events)).toBeGreaterThan(1)
    expect(result.governor!.throttleEvents).toBe(0)
  })

  it('holds nothing back and reports no governor section with governor.enabled false', async () => {
    const probe = fixedProbe(() => reading(99, 99))
    const { result, events } = await runFourSleeps({ governor: { enabled: false } }, probe)
    expect(peakRunning(events)).toBeGreaterThan(1)
    expect(result.governor).toBeUndefined()
    expect(probe.samples).toBe(0)
  })

  it('adaptive mode lowers concurrency while CPU is above its target and reports it', async () => {
    const { result } = await runFourSleeps(
      { governor: { mode: 'adaptive', sampleIntervalMs: 20, cpu: { throttlePercent: 100, resumePercent: 100, targetPercent: 50 } } },
      fixedProbe(() => reading(99)),
    )
    const limits = result.governor!.concurrency!.map((c) => c.limit)
    expect(limits[0]).toBe(4)
    expect(limits.at(-1)).toBe(1)
  })
})

/** File URLs of the runtime modules, JSON-quoted for a script's import(). */
function modules() {
  const url = (file: string) => JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', '..', '..', 'src', 'runtime', file)).href)
  return { createRuntime: url('runtime.ts'), SystemProbe: url('governor/system-probe.ts') }
}

/** Runs `lines` as an ES module in a child process (through tsx) that is never told to exit. */
async function runScript(lines: string[]): Promise<{ code: number | null; stdout: string }> {
  const script = join(mkdtempSync(join(tmpdir(), 'troupe-governor-')), 'script.mjs')
  writeFileSync(script, lines.join('\n'))
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  // A hang detector, not a timing claim: a process kept alive by the sampler never exits.
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(killer)
  return { code, stdout: stdout.trim() }
}

describe('SystemProbe (this machine)', () => {
  it('reads sane CPU and memory figures', async () => {
    const probe = new SystemProbe()
    try {
      const first = await probe.sample()
      const second = await probe.sample()
      for (const r of [first, second]) {
        expect(r.cpuPercent).toBeGreaterThanOrEqual(0)
        expect(r.cpuPercent).toBeLessThanOrEqual(100)
        expect(r.memoryPercent).toBeGreaterThan(0)
        expect(r.memoryPercent).toBeLessThanOrEqual(100)
        expect(r.memoryUsedMb).toBeGreaterThan(0)
        expect(r.memoryUsedMb).toBeLessThanOrEqual(totalmem() / 2 ** 20)
      }
    } finally {
      await probe.close()
    }
  })

  it.skipIf(process.platform !== 'linux')('sees a busy child process in a reading asked for right after another (it read the empty window as 0 % busy)', async () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
    const probe = new SystemProbe()
    try {
      await probe.sample()
      const next = await probe.sample()
      expect([next.cpuPercent > 0, next.ownCpuPercent! > 0]).toEqual([true, true])
    } finally {
      child.kill('SIGKILL')
      await probe.close()
    }
  })

  it('does not keep the process alive once runs are over, even without close()', async () => {
    const { createRuntime } = modules()
    const outcome = await runScript([
      `const { createRuntime } = await import(${createRuntime})`,
      `const runtime = createRuntime({ config: { checkpoint: { enabled: false }, governor: { sampleIntervalMs: 50 } } })`,
      `const result = await runtime.run({ name: 'alive', tasks: [{ id: 'a', agent: ${JSON.stringify(sleep)}, input: { ms: 700 } }] }).result`,
      `console.log(result.status, result.governor.samples > 0)`,
    ])
    expect(outcome).toEqual({ code: 0, stdout: 'completed true' })
  })

  it('keeps a script alive while its sample is pending, and not after', async () => {
    const { SystemProbe } = modules()
    const outcome = await runScript([
      `const { SystemProbe } = await import(${SystemProbe})`,
      `const reading = await new SystemProbe().sample()`,
      `console.log(typeof reading.cpuPercent)`,
    ])
    expect(outcome).toEqual({ code: 0, stdout: 'number' })
  })

  it('is what a runtime samples by default', async () => {
    runtime = createRuntime({ config: { checkpoint: { enabled: false }, maxParallel: 2, governor: { sampleIntervalMs: 50 } } })
    const result = await runtime.run({ name: 'one', tasks: [{ id: 'a', agent: sleep, input: { ms: 1500 } }] }).result
    expect(result.governor!.samples).toBeGreaterThan(0)
    expect(result.governor!.peakMemoryMb).toBeGreaterThan(0)
  })
})
