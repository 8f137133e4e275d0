import type { TaskStateEvent } from '../../src/runtime/report/events.ts'

/** The most tasks RUNNING at once, from the order of task:state events. */
export function peakRunning(events: readonly TaskStateEvent[]): number {
  let running = 0
  let peak = 0
  for (const e of events) {
    if (e.state === 'RUNNING') peak = Math.max(peak, ++running)
    else if (e.previous === 'RUNNING') running--
  }
  return peak
}

/** The [start, end] of each task's last RUNNING period, from task:state events. */
export function runningIntervals(events: readonly TaskStateEvent[]): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>()
  for (const e of events) {
    if (e.state === 'RUNNING') out.set(e.taskId, [e.at, Infinity])
    else if (e.previous === 'RUNNING') out.get(e.taskId)![1] = e.at
  }
  return out
}
