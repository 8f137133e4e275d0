/**
 * Linux `/proc` readings, synchronous: the machine's CPU ticks and memory, and the CPU ticks
 * and resident memory of this process and every process it started (its descendants).
 * Used by the sampler thread for every sample and once at runtime start (no blind start).
 * Everything returns undefined where `/proc` is absent (macOS, Windows).
 */
import { readdirSync, readFileSync } from 'node:fs'

const MB = 1024 * 1024
const PAGE_BYTES = 4096

export interface CpuTicks {
  readonly busy: number
  readonly total: number
}

/** All cores' ticks from `/proc/stat`. */
export function machineTicks(): CpuTicks | undefined {
  const line = readText('/proc/stat')?.split('\n', 1)[0]
  if (line === undefined || !line.startsWith('cpu ')) return undefined
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = fields.reduce((sum, value) => sum + value, 0)
  // idle + iowait are not busy.
  const busy = total - (fields[3] ?? 0) - (fields[4] ?? 0)
  return { busy, total }
}

/** Memory in use and total from `/proc/meminfo` (MemTotal − MemAvailable), MB. */
export function machineMemory(): { readonly usedMb: number; readonly totalMb: number } | undefined {
  const text = readText('/proc/meminfo')
  if (text === undefined) return undefined
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN)
  const total = kb('MemTotal')
  const available = kb('MemAvailable')
  if (!Number.isFinite(total) || !Number.isFinite(available)) return undefined
  return { usedMb: (total - available) / 1024, totalMb: total / 1024 }
}

export interface ProcessTree {
  /** utime+stime of each live process of the tree, in ticks, by pid. */
  readonly ticks: ReadonlyMap<number, number>
  /** cutime+cstime of the root: CPU of descendants that already exited and were reaped. */
  readonly reapedTicks: number
  /** Resident memory of the whole tree, MB. */
  readonly rssMb: number
  readonly processes: number
}

/** `root` (default this process) and all its descendants, from one pass over `/proc`. */
export function processTree(root = process.pid): ProcessTree | undefined {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((name) => name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57)
  } catch {
    return undefined
  }
  const stats = new Map<number, { ppid: number; ticks: number; reaped: number; rssPages: number }>()
  for (const name of pids) {
    const text = readText(`/proc/${name}/stat`)
    if (text === undefined) continue
    // comm (field 2) may hold spaces and parentheses: parse after its last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state): ppid 4, utime 14, stime 15, cutime 16, cstime 17, rss 24.
    stats.set(Number(name), {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
      reaped: Number(fields[13]) + Number(fields[14]),
      rssPages: Number(fields[21]),
    })
  }
  const self = stats.get(root)
  if (self === undefined) return undefined
  const children = new Map<number, number[]>()
  for (const [pid, stat] of stats) {
    const list = children.get(stat.ppid)
    if (list) list.push(pid)
    else children.set(stat.ppid, [pid])
  }
  const ticks = new Map<number, number>()
  let rssPages = 0
  const stack = [root]
  while (stack.length > 0) {
    const pid = stack.pop()!
    const stat = stats.get(pid)
    if (stat === undefined || ticks.has(pid)) continue
    ticks.set(pid, stat.ticks)
    rssPages += stat.rssPages
    for (const child of children.get(pid) ?? []) stack.push(child)
  }
  return { ticks, reapedTicks: self.reaped, rssMb: (rssPages * PAGE_BYTES) / MB, processes: ticks.size }
}

/**
 * Ticks the tree used between two readings: each live process's growth (a process new since
 * `before` counts in full), plus what reaped children added to the root's cumulative times.
 */
export function treeTicksBetween(before: ProcessTree, after: ProcessTree): number {
  let used = Math.max(0, after.reapedTicks - before.reapedTicks)
  for (const [pid, now] of after.ticks) used += Math.max(0, now - (before.ticks.get(pid) ?? 0))
  return used
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}
