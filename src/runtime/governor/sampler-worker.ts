/**
 * Entry of the governor's sampler thread: walking `/proc` (and, off Linux,
 * systeminformation's CPU reading, which shells out with a blocking execSync) runs here, off
 * the dispatch thread. Answers each `{ id }` request with `{ id, reading }` or `{ id, error }`.
 * Imports only node and the small `/proc` readers; systeminformation (~30 ms of CPU to load,
 * counted as troupe's own) only where `/proc` is missing.
 */
import { cpus } from 'node:os'
import { parentPort } from 'node:worker_threads'
import { cgroupMemoryUsedMb, readMachineLimits } from './machine-limits.ts'
import { machineMemory, machineTicks, processTree, treeTicksBetween, type CpuTicks, type ProcessTree } from './proc-stats.ts'
import type { ResourceReading } from './governor-policy.ts'

const MB = 1024 * 1024
/**
 * Shortest window a CPU figure covers: `/proc/stat` counts in ticks of 10 ms per core, so a
 * request that comes right after the previous reading (the first comes as the thread starts)
 * would read an empty window as 0 % busy. Such a request is answered once the window is long enough.
 */
const MIN_WINDOW_MS = 50
const limits = readMachineLimits()
let lastTicks: CpuTicks | undefined = machineTicks()
let lastTree: ProcessTree | undefined = processTree()
let lastAt = performance.now()
/** This process's CPU time (all its threads) in µs: far finer than `/proc` ticks of 10 ms. */
let lastUsage = process.cpuUsage()
/** CPUs `/proc/stat` counts over. */
const hostCpus = Math.max(1, cpus().length)

parentPort!.on('message', (request: { id: number }) => {
  const wait = lastAt + MIN_WINDOW_MS - performance.now()
  if (wait > 0 && lastTicks !== undefined) setTimeout(() => answer(request), wait)
  else answer(request)
})

function answer(request: { id: number }): void {
  const reading = procReading()
  if (reading) return parentPort!.postMessage({ id: request.id, reading })
  import('systeminformation')
    .then(({ default: si }) => Promise.all([si.currentLoad(), si.mem()]))
    .then(
      ([load, mem]) => {
        // `active` excludes buffers and page cache, which the kernel gives back under pressure.
        const used = mem.active > 0 ? mem.active : mem.used
        parentPort!.postMessage({
          id: request.id,
          reading: {
            cpuPercent: clampPercent(load.currentLoad),
            memoryPercent: mem.total > 0 ? clampPercent((used / mem.total) * 100) : 0,
            memoryUsedMb: used / MB,
          },
        })
      },
      (error: unknown) => parentPort!.postMessage({ id: request.id, error: String((error as Error)?.message ?? error) }),
    )
}

/**
 * CPU over the time since the previous sample, from `/proc/stat`; troupe's share is the CPU
 * of this process (all its threads, from `process.cpuUsage`, which in a worker thread covers
 * the whole process) and of every process it started, alive or reaped (`/proc` ticks). A
 * tick is 10 ms: over a 100 ms window on 2 cores one tick is 0.1 core, as much as an agent
 * that waits may use, so this process's own share is not counted in ticks.
 */
function procReading(): ResourceReading | undefined {
  const ticks = machineTicks()
  const tree = processTree()
  const memory = machineMemory()
  if (ticks === undefined || tree === undefined || memory === undefined || lastTicks === undefined || lastTree === undefined) return undefined
  const total = ticks.total - lastTicks.total
  const cpuPercent = total > 0 ? clampPercent(((ticks.busy - lastTicks.busy) / total) * 100) : 0
  const now = performance.now()
  const usage = process.cpuUsage()
  const selfUs = usage.user + usage.system - lastUsage.user - lastUsage.system
  const selfPercent = now > lastAt ? (selfUs / ((now - lastAt) * 1000 * hostCpus)) * 100 : 0
  const selfTicks = (tree.ticks.get(process.pid) ?? 0) - (lastTree.ticks.get(process.pid) ?? 0)
  const childPercent = total > 0 ? (Math.max(0, treeTicksBetween(lastTree, tree) - Math.max(0, selfTicks)) / total) * 100 : 0
  const ownCpuPercent = Math.min(cpuPercent, clampPercent(selfPercent + childPercent))
  lastTicks = ticks
  lastTree = tree
  lastAt = now
  lastUsage = usage
  const limited = limits.memoryMb < memory.totalMb - 1
  const usedMb = limited ? (cgroupMemoryUsedMb() ?? memory.usedMb) : memory.usedMb
  return {
    cpuPercent,
    ownCpuPercent,
    memoryPercent: clampPercent((usedMb / limits.memoryMb) * 100),
    memoryUsedMb: usedMb,
    ownMemoryMb: tree.rssMb,
    processes: tree.processes,
  }
}

function clampPercent(value: number): number {
  return Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : 0
}
