import { errorCause, type WorkerError, type WorkerTask } from './protocol.ts'

/** What a piscina rejection of an attempt means: aborted, out of memory, exited, uncloneable input, crashed. */
export function classifyWorkerError(error: Error & { code?: string }, task: WorkerTask): WorkerError {
  const cause = errorCause(error)
  if (error.name === 'AbortError') {
    return { code: 'ERR_CANCELLED', message: `Attempt ${task.attempt} of task "${task.taskId}" was aborted`, cause }
  }
  if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return { code: 'ERR_WORKER_OOM', message: `Task "${task.taskId}" ran out of memory in its worker thread (heap limit: governor.memory.perAgentMb); the worker was replaced`, cause }
  }
  const exit = /worker exited with code: (-?\d+)/.exec(error.message)
  if (exit) {
    return { code: 'ERR_WORKER_EXIT', message: `The worker thread running task "${task.taskId}" exited with code ${exit[1]} (did the agent call process.exit?); the worker was replaced`, cause }
  }
  if (error.name === 'DataCloneError') {
    return { code: 'ERR_TASK_FAILED', message: `Input of task "${task.taskId}" cannot be structured-cloned: ${error.message}`, cause, retryable: false }
  }
  return { code: 'ERR_WORKER_CRASH', message: `Task "${task.taskId}" crashed its worker thread with an uncaught exception: ${error.message}; the worker was replaced`, cause }
}
