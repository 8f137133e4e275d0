import { availableParallelism, freemem, loadavg, totalmem } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { ResourceProbe } from './governor.ts'
import type { ResourceReading } from './governor-policy.ts'
import { threadEntryFile } from '../core/worker-file.ts'
import { cgroupMemoryUsedMb, readMachineLimits, type MachineLimits } from './machine-limits.ts'
import { machineMemory } from './proc-stats.ts'

const MB = 1024 * 1024

interface SamplerReply {
  readonly id: number
  readonly reading?: ResourceReading
  readonly error?: string
}

/**
 * Reads CPU and memory of this machine — from `/proc` on Linux (troupe's share: this process
 * and every process it started), else with systeminformation — in a dedicated worker thread
 * (not the agents' pool) started on the first sample. The thread keeps the process alive only
 * while a sample is pending, never while idle.
 */
export class SystemProbe implements ResourceProbe {
  #worker: Worker | undefined
  #nextId = 0
  readonly #pending = new Map<number, { resolve: (reading: ResourceReading) => void; reject: (error: Error) => void }>()
  /** This process's CPU time and the wall clock at the previous sample, for `ownCpuPercent`. */
  #lastCpu = { usage: process.cpuUsage(), at: performance.now() }

  /** Cores and memory troupe may use: the host's, or its cgroup's limits. */
  readonly limits: MachineLimits = readMachineLimits()

  /**
   * Synchronous and cheap, for the decision before the first dispatch: CPU from the 1-minute
   * load average (the only CPU figure that needs no window), memory from `/proc/meminfo` or
   * the cgroup. Troupe has started nothing yet, so all of it counts as others'.
   */
  initial(): ResourceReading {
    const cpuPercent = Math.min(100, Math.max(0, ((loadavg()[0] ?? 0) / this.limits.cores) * 100))
    const memory = machineMemory()
    const hostUsedMb = memory?.usedMb ?? (totalmem() - freemem()) / MB
    const limited = this.limits.memoryMb < (memory?.totalMb ?? totalmem() / MB) - 1
    const usedMb = limited ? (cgroupMemoryUsedMb() ?? hostUsedMb) : hostUsedMb
    return { cpuPercent, ownCpuPercent: 0, memoryPercent: Math.min(100, (usedMb / this.limits.memoryMb) * 100), memoryUsedMb: usedMb }
  }

  sample(): Promise<ResourceReading> {
    const worker = (this.#worker ??= this.#start())
    const id = ++this.#nextId
    // systeminformation's CPU figure covers the time since its previous call; measure this
    // process's share over the same window (process.cpuUsage counts all its threads).
    const ownCpuPercent = this.#ownCpuPercent()
    return new Promise<ResourceReading>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref()
      this.#pending.set(id, { resolve, reject })
      worker.postMessage({ id })
    }).then((reading) => (reading.ownCpuPercent !== undefined ? reading : { ...reading, ownCpuPercent: Math.min(ownCpuPercent, reading.cpuPercent) }))
  }

  #ownCpuPercent(): number {
    const now = performance.now()
    const usage = process.cpuUsage(this.#lastCpu.usage)
    const elapsedUs = (now - this.#lastCpu.at) * 1000
    this.#lastCpu = { usage: process.cpuUsage(), at: now }
    if (elapsedUs <= 0) return 0
    return Math.min(100, ((usage.user + usage.system) / (elapsedUs * availableParallelism())) * 100)
  }

  async close(): Promise<void> {
    const worker = this.#worker
    this.#worker = undefined
    this.#failAll(new Error('the system probe was closed'))
    if (worker) await worker.terminate()
  }

  #start(): Worker {
    const worker = new Worker(threadEntryFile(import.meta.url, 'sampler-worker', ['sampler-worker.ts', 'machine-limits.ts', 'proc-stats.ts']))
    worker.on('message', (reply: SamplerReply) => {
      const pending = this.#pending.get(reply.id)
      if (pending === undefined) return
      this.#pending.delete(reply.id)
      if (this.#pending.size === 0) worker.unref()
      if (reply.reading) pending.resolve(reply.reading)
      else pending.reject(new Error(reply.error ?? 'the sampler thread sent no reading'))
    })
    const lost = (error: Error) => {
      if (this.#worker === worker) this.#worker = undefined
      this.#failAll(error)
    }
    worker.on('error', lost)
    worker.on('exit', (code) => lost(new Error(`the sampler thread exited with code ${code}`)))
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref()
    return worker
  }

  #failAll(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error)
    this.#pending.clear()
  }
}
