import { describe, expect, it } from 'vitest'
import { describeHold, fit, liveUnknownCpu, UNKNOWN_CPU } from '../../../src/runtime/admission/fit-policy.ts'

const machine = { cores: 2, othersCpu: 0, memoryMb: 8000, memoryUsedMb: 2000 }

describe('fit', () => {
  it('admits anything when nothing runs, however busy the machine', () => {
    expect(fit({ ...machine, othersCpu: 2, memoryUsedMb: 8000 }, { attempts: 0, cpu: 0 }, 1, 9000)).toEqual({ fits: true })
  })

  it('lets a waiting agent start while the others use every core', () => {
    expect(fit({ ...machine, othersCpu: 2 }, { attempts: 30, cpu: 1 }, 0.01, undefined)).toEqual({ fits: true })
  })

  it('holds a CPU-bound agent once the running ones fill the cores', () => {
    expect(fit(machine, { attempts: 2, cpu: 2 }, 1, undefined)).toEqual({ fits: false, reason: 'cpu', need: 1, free: 0 })
  })

  it('admits a second CPU-bound agent on two idle cores', () => {
    expect(fit(machine, { attempts: 1, cpu: 1 }, 1, undefined)).toEqual({ fits: true })
  })

  it('keeps one core for troupe when others use them all', () => {
    const busy = { ...machine, othersCpu: 2 }
    expect(fit(busy, { attempts: 1, cpu: 0.02 }, 0.9, undefined)).toEqual({ fits: true })
    expect(fit(busy, { attempts: 1, cpu: 1 }, 1, undefined)).toMatchObject({ fits: false, reason: 'cpu' })
  })

  it('gives CPU-bound agents one core between them while the CPU threshold is crossed', () => {
    expect(fit({ ...machine, cpuThrottled: true }, { attempts: 1, cpu: 1 }, 1, undefined)).toMatchObject({ fits: false, reason: 'cpu', free: 0 })
  })

  it('holds an agent whose peak memory does not fit what is free', () => {
    expect(fit(machine, { attempts: 1, cpu: 0 }, 0, 7000)).toEqual({ fits: false, reason: 'memory', need: 7000, free: 6000 })
  })
})

describe('liveUnknownCpu', () => {
  it("shares troupe's measured CPU, less its measured agents', among unmeasured attempts", () => {
    expect(liveUnknownCpu(1.2, 1, 4, false)).toBeCloseTo(0.05)
  })

  it('assumes CPU-bound when a saturated machine shows any real use', () => {
    expect(liveUnknownCpu(0.6, 0, 2, true)).toBe(UNKNOWN_CPU)
  })

  it('assumes CPU-bound on a saturated machine when many attempts together use a core', () => {
    expect(liveUnknownCpu(1.5, 0, 40, true)).toBe(UNKNOWN_CPU)
  })

  it('still says waiting on a saturated machine when the use is near zero', () => {
    expect(liveUnknownCpu(0.02, 0, 2, true)).toBeCloseTo(0.01)
  })
})

describe('describeHold', () => {
  it('names the agent, its need and what is free', () => {
    expect(describeHold('analyse-file', { fits: false, reason: 'cpu', need: 1, free: 0.2 })).toBe('held: analyse-file needs ~1.0 CPU, 0.2 free')
  })
})
