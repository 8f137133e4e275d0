import { describe, expect, it } from 'vitest'
import { DemandBook, describeAgentDemand } from '../../../src/runtime/governor/demand.ts'

describe('DemandBook', () => {
  it('knows nothing of an agent never declared nor measured', () => {
    expect(new DemandBook().estimate('x')).toBeUndefined()
  })

  it("takes a task's declared resources as the estimate until a measurement", () => {
    const book = new DemandBook()
    book.seed('build', { cpu: 2, memoryMb: 512 })
    expect(book.estimate('build')).toEqual({ cpu: 2, memoryMb: 512, samples: 0, source: 'plan' })
  })

  it('ignores declared resources that are not numbers', () => {
    const book = new DemandBook()
    book.seed('build', { cpu: 'lots' })
    expect(book.estimate('build')).toBeUndefined()
  })

  it('replaces the declaration with the first measurement (CPU time over wall time)', () => {
    const book = new DemandBook()
    book.seed('build', { cpu: 2 })
    book.record('build', { cpuMs: 500, wallMs: 1000, peakRssMb: 100 })
    expect(book.estimate('build')).toEqual({ cpu: 0.5, memoryMb: 100, samples: 1, source: 'measured' })
  })

  it('moves the estimate towards later measurements (EWMA) and never back to the declaration', () => {
    const book = new DemandBook()
    book.record('build', { cpuMs: 0, wallMs: 1000 })
    book.record('build', { cpuMs: 1000, wallMs: 1000 })
    book.seed('build', { cpu: 3 })
    expect(book.estimate('build')!.cpu).toBeCloseTo(0.4)
    expect(book.estimate('build')!.samples).toBe(2)
  })
})

describe('describeAgentDemand', () => {
  it('prints one aligned line per agent with its origin', () => {
    const book = new DemandBook()
    book.seed('build', { cpu: 2, memoryMb: 512 })
    book.record('llm', { cpuMs: 10, wallMs: 1000 })
    expect(describeAgentDemand(book.snapshot())).toEqual(['build  ~2.0 CPU  ~512 MB  (declared)', 'llm    ~0.0 CPU  (measured, 1 attempt)'])
  })
})
