/**
 * The machine as troupe may use it: cores and memory, bounded by cgroup limits (v2
 * `cpu.max` / `memory.max`, v1 `cpu.cfs_quota_us` / `memory.limit_in_bytes`) when present.
 * Synchronous and cheap (a few small file reads), so it runs once at runtime start.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'

const MB = 1024 * 1024

export interface MachineLimits {
  /** CPU cores troupe may use: the host's, or fewer under a cgroup CPU quota. */
  readonly cores: number
  /** Memory troupe may use, MB: the host's, or less under a cgroup memory limit. */
  readonly memoryMb: number
  /** Where the bounds come from. */
  readonly source: 'host' | 'cgroup v2' | 'cgroup v1'
}

/** Reads the limits under `root` (default `/sys/fs/cgroup`; a test passes a directory of its own). */
export function readMachineLimits(root = '/sys/fs/cgroup'): MachineLimits {
  const hostCores = availableParallelism()
  const hostMb = totalmem() / MB
  const v2 = cgroupV2(root)
  const v1 = v2 ?? cgroupV1(root)
  const found = v2 ? 'cgroup v2' : v1 ? 'cgroup v1' : 'host'
  const cores = v1?.cores !== undefined ? Math.min(hostCores, v1.cores) : hostCores
  const memoryMb = v1?.memoryMb !== undefined ? Math.min(hostMb, v1.memoryMb) : hostMb
  return { cores, memoryMb, source: found === 'host' || (cores === hostCores && memoryMb === hostMb) ? 'host' : found }
}

/** Memory the cgroup has charged, MB, when troupe runs under a limited cgroup; else undefined. */
export function cgroupMemoryUsedMb(root = '/sys/fs/cgroup'): number | undefined {
  const v2 = readNumber(`${root}/memory.current`)
  if (v2 !== undefined) return v2 / MB
  const v1 = readNumber(`${root}/memory/memory.usage_in_bytes`)
  return v1 === undefined ? undefined : v1 / MB
}

interface Bounds {
  readonly cores?: number
  readonly memoryMb?: number
}

function cgroupV2(root: string): Bounds | undefined {
  const cpu = readText(`${root}/cpu.max`)
  const memory = readText(`${root}/memory.max`)
  if (cpu === undefined && memory === undefined) return undefined
  const [quota, period] = (cpu ?? 'max').trim().split(/\s+/)
  const cores = quota !== undefined && quota !== 'max' && Number(period) > 0 ? Number(quota) / Number(period) : undefined
  const bytes = memory === undefined || memory.trim() === 'max' ? undefined : Number(memory)
  return bounds(cores, bytes)
}

function cgroupV1(root: string): Bounds | undefined {
  const quota = readNumber(`${root}/cpu/cpu.cfs_quota_us`) ?? readNumber(`${root}/cpu,cpuacct/cpu.cfs_quota_us`)
  const period = readNumber(`${root}/cpu/cpu.cfs_period_us`) ?? readNumber(`${root}/cpu,cpuacct/cpu.cfs_period_us`)
  const bytes = readNumber(`${root}/memory/memory.limit_in_bytes`)
  if (quota === undefined && bytes === undefined) return undefined
  const cores = quota !== undefined && quota > 0 && period !== undefined && period > 0 ? quota / period : undefined
  // v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages).
  return bounds(cores, bytes !== undefined && bytes < 2 ** 60 ? bytes : undefined)
}

function bounds(cores: number | undefined, bytes: number | undefined): Bounds {
  return {
    ...(cores !== undefined && Number.isFinite(cores) && cores > 0 ? { cores } : {}),
    ...(bytes !== undefined && Number.isFinite(bytes) && bytes > 0 ? { memoryMb: bytes / MB } : {}),
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

function readNumber(file: string): number | undefined {
  const text = readText(file)
  if (text === undefined) return undefined
  const value = Number(text.trim())
  return Number.isFinite(value) ? value : undefined
}
