import { indexProcTable, type ProcIndex } from './process-tree.ts'

/**
 * One clock for everything that looks at `/proc` periodically (the resource sampler, the
 * containment's capture of escaped descendants): each tick reads and indexes the process
 * table once, for every watcher due then. Reading `/proc` is a file read per process on
 * the machine; done once per watcher it was most of their cost.
 */

/** The base tick; a watcher's interval is rounded to a whole number of ticks (at least one). */
const TICK_MS = 250

interface Watcher {
  readonly everyTicks: number
  readonly onTick: (procs: ProcIndex) => void
}

const watchers = new Set<Watcher>()
let timer: NodeJS.Timeout | undefined
let tick = 0

/** Calls `onTick` about every `intervalMs` with a reading shared by all watchers due at that tick. Returns the unwatch. */
export function watchProcs(intervalMs: number, onTick: (procs: ProcIndex) => void): () => void {
  const watcher: Watcher = { everyTicks: Math.max(1, Math.round(intervalMs / TICK_MS)), onTick }
  watchers.add(watcher)
  timer ??= setInterval(tickAll, TICK_MS).unref()
  return () => {
    if (!watchers.delete(watcher) || watchers.size > 0) return
    clearInterval(timer)
    timer = undefined
  }
}

function tickAll(): void {
  tick++
  const due = [...watchers].filter((watcher) => tick % watcher.everyTicks === 0)
  if (due.length === 0) return
  const procs = indexProcTable()
  // A watcher may unwatch another from its callback (a cap stops an attempt): skip it then.
  for (const watcher of due) if (watchers.has(watcher)) watcher.onTick(procs)
}
