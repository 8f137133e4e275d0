import type { PiscinaTask } from 'piscina'

/** The balancer's view of a pool thread (piscina's `PiscinaWorker`, the fields read here). */
interface ThreadView {
  /** The thread's id (`threadId`). */
  readonly id?: number
  readonly currentUsage: number
  readonly isRunningAbortableTask: boolean
}

/**
 * Attempts of agents that mostly wait (measured below the governor's waiting CPU) one thread
 * runs at once: as many as a run's default maxParallel on a small machine, since an event loop
 * serves that many waits at no cost, and piscina starts a new thread for every task queued
 * while none can take it (a burst of waiting tasks past this bound starts threads one per task).
 */
export const WAITING_TASKS_PER_THREAD = 64

/**
 * piscina's load balancer for troupe's pool: where a task goes, or `null` to start a new
 * thread (up to `maxThreads`; else the task stays queued).
 *
 * - An idle thread always comes first, so no task shares a thread while another thread idles.
 * - An abortable task (an attempt troupe may have to terminate: every CPU-bound or not yet
 *   measured agent) runs alone on its thread, since terminating the thread is how it is
 *   stopped; piscina reports such a thread's usage as `Infinity`.
 * - A task without a signal (an attempt of an agent that mostly waits, warm-ups, checks)
 *   shares the least busy thread that runs no abortable task, up to `perThread` at once.
 * - A thread in `retiring` (being terminated, see SharedThreads) takes nothing.
 *
 * piscina's own LeastBusyBalancer picks the same way, but is not exported and takes its
 * bound from `concurrentTasksPerWorker`, which also sizes the pool's drain capacity.
 */
export function sharingBalancer(
  perThread: number,
  retiring: ReadonlySet<number> = new Set(),
): <T extends ThreadView>(task: Pick<PiscinaTask, 'isAbortable'>, threads: readonly T[]) => T | null {
  return <T extends ThreadView>(task: Pick<PiscinaTask, 'isAbortable'>, threads: readonly T[]): T | null => {
    let candidate: T | null = null
    let least = perThread
    for (const thread of threads) {
      // A thread being terminated (left with only abandoned attempts) takes nothing new.
      if (retiring.size > 0 && thread.id !== undefined && retiring.has(thread.id)) continue
      if (thread.currentUsage === 0) return thread
      if (task.isAbortable || thread.isRunningAbortableTask) continue
      if (thread.currentUsage < least) {
        candidate = thread
        least = thread.currentUsage
      }
    }
    return candidate
  }
}
