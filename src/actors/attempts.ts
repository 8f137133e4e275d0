import type { ClaimRegistry } from '../runtime/admission/claims.ts'
import type { Dispatcher } from '../runtime/admission/dispatcher.ts'
import type { Limits } from '../runtime/admission/limits.ts'
import type { UsageReport } from '../runtime/admission/usage.ts'
import type { Clock } from '../runtime/core/clock.ts'
import type { ResolvedConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import type { RunEvents } from '../runtime/core/events.ts'
import type { AttemptHandle, AttemptListener, AttemptResult, Executor } from '../runtime/execution/executor.ts'
import type { CompiledPlan, CompiledTask } from '../runtime/plan/plan.ts'

/** What an attempt needs from its run: where it runs, and where its callbacks go. */
export interface AttemptHost {
  readonly runId: string
  readonly plan: CompiledPlan
  readonly config: ResolvedConfig
  readonly executor: Executor
  readonly runDir: string | undefined
  readonly clock: Clock
  readonly dispatcher: Dispatcher
  readonly claims: ClaimRegistry | undefined
  readonly limits: Limits | undefined
  readonly emit: <K extends keyof RunEvents>(name: K, ...args: RunEvents[K]) => void
  readonly onUsage: (task: CompiledTask, report: UsageReport) => void
}

/** An attempt in flight: it holds a slot until its executor settles. */
export interface InFlight {
  readonly attempt: number
  readonly handle: AttemptHandle
  /** The attempt's timeout, on the run's clock. */
  readonly timer: unknown
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze(Object.create(null) as Record<string, unknown>)

/**
 * Starts attempt `attempt` of `task` through the executor seam, with its timeout on the
 * run's clock. `onTimeout` fires when the timeout elapses first; `onSettled` when the
 * executor answers (also after a timeout or an abort: the slot is held until then).
 * `dependencies` is keyed by user-chosen task ids, so it has no prototype.
 */
export function startAttempt(
  host: AttemptHost,
  task: CompiledTask,
  attempt: number,
  timeoutMs: number,
  outputOf: (dep: number) => unknown,
  onTimeout: () => void,
  onSettled: (inFlight: InFlight, result: AttemptResult) => void,
): InFlight {
  let dependencies = EMPTY
  if (task.deps.length > 0) {
    const byId = Object.create(null) as Record<string, unknown>
    for (const dep of task.deps) byId[host.plan.tasks[dep]!.id] = outputOf(dep)
    dependencies = byId
  }
  const handle = host.executor.start(
    {
      runId: host.runId,
      taskId: task.id,
      attempt,
      agent: task.agentSpec,
      input: task.input,
      dependencies,
      model: host.config.models[task.agent],
      timeoutMs,
      graceMs: host.config.cancelGraceMs,
      baseDir: host.plan.baseDir,
      runDir: host.runDir,
      workspace: undefined,
      port: undefined,
    },
    attemptListener(host, task, attempt),
  )
  const timer = host.clock.setTimeout(onTimeout, timeoutMs)
  const inFlight: InFlight = { attempt, handle, timer }
  void handle.result.then((result) => {
    host.clock.clearTimeout(timer)
    onSettled(inFlight, result)
  })
  return inFlight
}

/** The `ctx` bridge: what an agent's progress, logs, usage, claims and limits turn into. */
function attemptListener(host: AttemptHost, task: CompiledTask, attempt: number): AttemptListener {
  const { runId, clock } = host
  return {
    onProgress: (fraction, message) =>
      host.emit('task:progress', {
        runId,
        taskId: task.id,
        attempt,
        fraction: Math.min(1, Math.max(0, Number(fraction) || 0)),
        message,
        at: clock.now(),
      }),
    onLog: (message) => host.emit('task:log', { runId, taskId: task.id, attempt, message, at: clock.now() }),
    onAcquire: (name, signal) =>
      host.limits?.acquire(name, signal) ?? Promise.reject(new TroupeError('ERR_ARGUMENT_INVALID', `ctx.acquire(${JSON.stringify(name)}): no limits on this runtime`)),
    onUsage: (report) => host.onUsage(task, report),
    onClaim: (path) => host.claims?.claim(runId, task.id, path) ?? { granted: true },
    onRelease: (path) => {
      // A task kept QUEUED by this claim may pass its gate now.
      if (host.claims?.unclaim(runId, task.id, path)) host.dispatcher.request()
    },
  }
}
