import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cgroupMemoryUsedMb, readMachineLimits } from '../../../src/runtime/governor/machine-limits.ts'

const MB = 1024 * 1024

function cgroupDir(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'troupe-cgroup-'))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

describe('readMachineLimits', () => {
  it('is the host without cgroup files', () => {
    expect(readMachineLimits(cgroupDir({}))).toEqual({ cores: availableParallelism(), memoryMb: totalmem() / MB, source: 'host' })
  })

  it('reads a cgroup v2 memory.max and cpu.max quota', () => {
    const limits = readMachineLimits(cgroupDir({ 'memory.max': `${256 * MB}\n`, 'cpu.max': '50000 100000\n' }))
    expect(limits).toEqual({ cores: Math.min(0.5, availableParallelism()), memoryMb: 256, source: 'cgroup v2' })
  })

  it('treats cgroup v2 "max" as no limit', () => {
    expect(readMachineLimits(cgroupDir({ 'memory.max': 'max\n', 'cpu.max': 'max 100000\n' })).source).toBe('host')
  })

  it('reads cgroup v1 memory.limit_in_bytes and cfs quota', () => {
    const limits = readMachineLimits(
      cgroupDir({ 'memory/memory.limit_in_bytes': `${512 * MB}`, 'cpu/cpu.cfs_quota_us': '100000', 'cpu/cpu.cfs_period_us': '100000' }),
    )
    expect(limits).toEqual({ cores: 1, memoryMb: 512, source: 'cgroup v1' })
  })

  it('treats cgroup v1 quota -1 and the huge "unlimited" memory as no limit', () => {
    const limits = readMachineLimits(cgroupDir({ 'memory/memory.limit_in_bytes': '9223372036854771712', 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' }))
    expect(limits.source).toBe('host')
  })

  it("reads the cgroup's charged memory", () => {
    expect(cgroupMemoryUsedMb(cgroupDir({ 'memory.current': `${64 * MB}` }))).toBe(64)
  })
})
