import type { EventEmitter } from 'node:events'
import { Run } from '../runtime/run.ts'
import type { Runtime } from '../runtime/runtime.ts'
import { reportListenerError, type RunEvents } from '../runtime/report/events.ts'
import { GOVERNOR_EVENTS, GovernorMonitor, type GovernorThresholds, type GovernorView } from './governor-monitor.ts'
import { RunMonitor, type RunSnapshot } from './run-monitor.ts'

/** Ended runs kept for late viewers; the oldest are dropped beyond this. */
const KEPT_RUNS = 20

/** Everything a live view shows: every watched run, and the governor. JSON-serialisable. */
export interface MonitorSnapshot {
  readonly runs: readonly RunSnapshot[]
  readonly governor: GovernorView
}

/** A run or governor event as it happened, for consumers that want the raw stream. */
export interface MonitorEvent {
  readonly name: keyof RunEvents | (typeof GOVERNOR_EVENTS)[number]
  readonly data: unknown
}

export interface MonitorOptions {
  /** @default Date.now */
  readonly now?: () => number
  /** Shown with the governor gauges. @default the runtime's config.governor, when watching a runtime */
  readonly thresholds?: GovernorThresholds
}

/**
 * Watches a runtime (every run on it, and its governor) or a single run, and keeps a
 * {@link RunMonitor} per run. Listeners hear every event after it was folded in.
 */
export class Monitor {
  readonly #now: () => number
  readonly #runs = new Map<string, { run: Run; monitor: RunMonitor }>()
  readonly #governor: GovernorMonitor
  readonly #listeners = new Set<(event: MonitorEvent) => void>()
  readonly #detach: (() => void)[] = []

  constructor(source: Runtime | Run, options: MonitorOptions = {}) {
    this.#now = options.now ?? Date.now
    const governor = source instanceof Run ? undefined : source.config.governor
    this.#governor = new GovernorMonitor(
      options.thresholds ??
        (governor
          ? {
              cpu: { throttlePercent: governor.cpu.throttlePercent, resumePercent: governor.cpu.resumePercent },
              memory: { throttlePercent: governor.memory.throttlePercent, resumePercent: governor.memory.resumePercent },
            }
          : undefined),
      source instanceof Run ? undefined : () => source.agentDemand(),
    )
    const emitter = source as unknown as EventEmitter
    const on = <T>(name: string, typed: (arg: T) => void) => {
      const listener = typed as (...args: unknown[]) => void
      emitter.on(name, listener)
      this.#detach.push(() => emitter.off(name, listener))
    }
    if (source instanceof Run) {
      this.#watch(source)
    } else {
      for (const run of source.runs.values()) this.#watch(run)
      on('run:created', (run: Run) => this.#watch(run))
    }
    on('run:start', (e: RunEvents['run:start'][0]) => this.#emit('run:start', e))
    on('task:state', (e: RunEvents['task:state'][0]) => {
      this.#runs.get(e.runId)?.monitor.taskState(e)
      this.#emit('task:state', e)
    })
    // Tasks added at run time: the run's monitor reads them from the (growing) plan.
    on('task:added', (e: RunEvents['task:added'][0]) => this.#emit('task:added', e))
    on('task:progress', (e: RunEvents['task:progress'][0]) => {
      this.#runs.get(e.runId)?.monitor.taskProgress(e)
      this.#emit('task:progress', e)
    })
    on('task:log', (e: RunEvents['task:log'][0]) => {
      this.#runs.get(e.runId)?.monitor.taskLog(e)
      this.#emit('task:log', e)
    })
    on('limit:paused', (e: RunEvents['limit:paused'][0]) => {
      this.#runs.get(e.runId)?.monitor.limitPaused(e)
      this.#emit('limit:paused', e)
    })
    on('task:approval', (e: RunEvents['task:approval'][0]) => {
      this.#runs.get(e.runId)?.monitor.taskApproval(e)
      this.#emit('task:approval', e)
    })
    on('scratchpad:note', (e: RunEvents['scratchpad:note'][0]) => {
      this.#runs.get(e.runId)?.monitor.scratchpadNote(e)
      this.#emit('scratchpad:note', e)
    })
    on('run:end', (e: RunEvents['run:end'][0]) => {
      this.#runs.get(e.runId)?.monitor.runEnd(e)
      this.#emit('run:end', e)
    })
    for (const name of GOVERNOR_EVENTS) {
      on(name, (e: unknown) => {
        this.#governor.apply(name, e)
        this.#emit(name, e)
      })
    }
  }

  /** The watched run with this id, while it is kept. */
  run(runId: string): Run | undefined {
    return this.#runs.get(runId)?.run
  }

  snapshot(): MonitorSnapshot {
    return { runs: [...this.#runs.values()].map((r) => r.monitor.snapshot()), governor: this.#governor.view }
  }

  /** Calls `listener` after each event is folded in. Returns a function that unsubscribes. */
  subscribe(listener: (event: MonitorEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Stops listening to the source. */
  close(): void {
    for (const detach of this.#detach.splice(0)) detach()
    this.#listeners.clear()
  }

  #watch(run: Run): void {
    if (this.#runs.has(run.id)) return
    const monitor = new RunMonitor({
      runId: run.id,
      plan: run.plan,
      strategy: run.strategy,
      maxParallel: () => run.maxParallel,
      startedAt: this.#now(),
      now: this.#now,
    })
    // A run watched after it started: take each task's current state as its first step.
    for (const task of run.plan.tasks) {
      const state = run.stateOf(task.id)
      if (state !== undefined && state !== 'PENDING') {
        monitor.taskState({ runId: run.id, taskId: task.id, agent: task.agent, state, previous: 'PENDING', attempt: 1, at: this.#now() })
      }
    }
    this.#runs.set(run.id, { run, monitor })
    for (const [id, kept] of this.#runs) {
      if (this.#runs.size <= KEPT_RUNS) break
      if (kept.monitor.status !== 'running') this.#runs.delete(id)
    }
  }

  #emit(name: MonitorEvent['name'], data: unknown): void {
    for (const listener of this.#listeners) {
      try {
        listener({ name, data })
      } catch (error) {
        reportListenerError(error)
      }
    }
  }
}
