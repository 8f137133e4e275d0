/**
 * Entry of the governor's sampler thread. systeminformation's CPU reading shells out with a
 * blocking execSync and its first call waits 500 ms, so it runs here, off the dispatch thread.
 * Answers each `{ id }` request with `{ id, reading }` or `{ id, error }`. Imports only
 * systeminformation: no effect, no runtime modules.
 */
import { parentPort } from 'node:worker_threads'
import si from 'systeminformation'

const MB = 1024 * 1024

parentPort!.on('message', (request: { id: number }) => {
  Promise.all([si.currentLoad(), si.mem()]).then(
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
})

function clampPercent(value: number): number {
  return Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : 0
}
