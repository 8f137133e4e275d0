import { describe, expect, it } from 'vitest'
import { admissionLimit, decide, externalCpuPercent, initialGovernorState, type GovernorPolicy, type ResourceReading } from '../../../src/runtime/governor/governor-policy.ts'

const threshold: GovernorPolicy = {
  mode: 'threshold',
  cpu: { throttlePercent: 90, resumePercent: 75, targetPercent: 80 },
  memory: { throttlePercent: 90, resumePercent: 80 },
}
const adaptive: GovernorPolicy = { ...threshold, mode: 'adaptive' }
const reading = (cpuPercent: number, memoryPercent = 10): ResourceReading => ({ cpuPercent, memoryPercent, memoryUsedMb: memoryPercent * 100 })
const load = { inFlight: 0, capacity: 8 }

describe('decide (threshold mode)', () => {
  it("does not throttle on CPU that troupe's own workers use", () => {
    const own: ResourceReading = { ...reading(100), ownCpuPercent: 96 }
    expect(decide(initialGovernorState(4), own, threshold, load).throttled).toBeUndefined()
  })

  it('throttles when the CPU troupe does not use reaches cpu.throttlePercent', () => {
    const others: ResourceReading = { ...reading(100), ownCpuPercent: 8 }
    expect(decide(initialGovernorState(4), others, threshold, load).throttled).toBe('cpu')
  })

  it("counts troupe's own memory: memory is a hard limit", () => {
    const own: ResourceReading = { ...reading(10, 95), ownCpuPercent: 10 }
    expect(decide(initialGovernorState(4), own, threshold, load).throttled).toBe('memory')
  })

  it('throttles for cpu when a reading reaches cpu.throttlePercent', () => {
    expect(decide(initialGovernorState(4), reading(90), threshold, load).throttled).toBe('cpu')
  })

  it('throttles for memory when used memory reaches memory.throttlePercent', () => {
    expect(decide(initialGovernorState(4), reading(10, 95), threshold, load).throttled).toBe('memory')
  })

  it('does not throttle between the resume and throttle thresholds', () => {
    expect(decide(initialGovernorState(4), reading(85, 85), threshold, load).throttled).toBeUndefined()
  })

  it('stays throttled between the thresholds (hysteresis)', () => {
    const throttled = decide(initialGovernorState(4), reading(95), threshold, load)
    expect(decide(throttled, reading(80), threshold, load).throttled).toBe('cpu')
  })

  it('resumes only when cpu and memory are both below their resume thresholds', () => {
    const throttled = decide(initialGovernorState(4), reading(95), threshold, load)
    expect(decide(throttled, reading(50, 85), threshold, load).throttled).toBe('memory')
    expect(decide(throttled, reading(50, 50), threshold, load).throttled).toBeUndefined()
  })

  it('returns the same state object when nothing changes', () => {
    const state = initialGovernorState(4)
    expect(decide(state, reading(10), threshold, load)).toBe(state)
  })
})

describe('admissionLimit', () => {
  it('is 0 while throttled, so the dispatcher admits only when nothing runs', () => {
    expect(admissionLimit({ throttled: 'cpu', limit: 4 }, 'threshold')).toBe(0)
  })

  it('is unbounded in threshold mode when not throttled', () => {
    expect(admissionLimit({ throttled: undefined, limit: 4 }, 'threshold')).toBe(Infinity)
  })

  it('is the AIMD limit in adaptive mode', () => {
    expect(admissionLimit({ throttled: undefined, limit: 3 }, 'adaptive')).toBe(3)
  })
})

describe('decide (adaptive mode, AIMD)', () => {
  it('halves the limit when cpu reaches the target', () => {
    expect(decide(initialGovernorState(8), reading(85), adaptive, { inFlight: 8, capacity: 8 }).limit).toBe(4)
  })

  it('never lowers the limit below 1', () => {
    expect(decide(initialGovernorState(1), reading(85), adaptive, { inFlight: 1, capacity: 8 }).limit).toBe(1)
  })

  it('adds one when cpu is below the target and the limit is what holds work back', () => {
    expect(decide(initialGovernorState(3), reading(40), adaptive, { inFlight: 3, capacity: 8 }).limit).toBe(4)
  })

  it('does not grow a limit that is not in use', () => {
    expect(decide(initialGovernorState(3), reading(40), adaptive, { inFlight: 1, capacity: 8 }).limit).toBe(3)
  })

  it('does not grow past the capacity', () => {
    expect(decide(initialGovernorState(8), reading(40), adaptive, { inFlight: 8, capacity: 8 }).limit).toBe(8)
  })

  it('does not throttle on the CPU thresholds, which the target replaces', () => {
    expect(decide(initialGovernorState(8), reading(99), adaptive, { inFlight: 8, capacity: 8 }).throttled).toBeUndefined()
  })

  it('still throttles on the memory thresholds', () => {
    expect(decide(initialGovernorState(8), reading(10, 95), adaptive, { inFlight: 8, capacity: 8 }).throttled).toBe('memory')
  })

  it('leaves the limit alone in threshold mode', () => {
    expect(decide(initialGovernorState(8), reading(85), threshold, { inFlight: 8, capacity: 8 }).limit).toBe(8)
  })
})

describe('externalCpuPercent', () => {
  it('is the machine CPU minus the process CPU, never below 0', () => {
    expect(externalCpuPercent({ ...reading(70), ownCpuPercent: 50 })).toBe(20)
    expect(externalCpuPercent({ ...reading(30), ownCpuPercent: 50 })).toBe(0)
    expect(externalCpuPercent(reading(30))).toBe(30)
  })
})
