import type { Gate } from '../admission/gate.ts'
import type { CompiledPlan } from '../plan/plan.ts'
import type { Executor } from './executor.ts'

/**
 * Where a runtime's attempts run: everything `createRuntime` needs from it, and nothing
 * else. The runtime wraps {@link executor} (worktrees, cache, demand measurement), puts
 * {@link gates} in its admission chain, calls {@link prepare} before each run, {@link ready}
 * from `runtime.ready()` and {@link close} from `runtime.close()`. Every `ctx` service an
 * attempt uses reaches the run through the `AttemptListener` its executor is handed.
 *
 * Built in: `createLocalBackend` (`backend: 'local'`) and `createRedisBackend` (`redis://…`).
 *
 * @example
 * const runtime = createRuntime({ backend: { executor, gates: [], close: (force) => executor.close(force) } })
 */
export interface Backend {
  /** Runs every attempt. */
  readonly executor: Executor
  /**
   * Admission gates the executor needs, after the runtime's claims and before its named
   * limits (the local backend: the worker pool's thread slots; a remote one: none, its
   * workers bound themselves). Shared by every run of the runtime.
   */
  readonly gates: readonly Gate[]
  /**
   * Readies the backend for a run before its first task starts (the local one checks that
   * every module agent loads and warms `parallelism` threads). Rejecting fails the run
   * (a TroupeError keeps its code, anything else is ERR_AGENT_LOAD). @default nothing to do
   */
  prepare?(plan: CompiledPlan, parallelism: number): Promise<void>
  /** Resolves once the backend can take work (`runtime.ready()`). @default at once */
  ready?(): Promise<void>
  /**
   * Waits for attempts in flight (or, with `force`, stops them) and frees everything the
   * backend holds, its executor included. Called instead of `executor.close`: once with
   * `force` at once on a forced close, else once after the runs ended.
   */
  close(force?: boolean): Promise<void>
}

/** What a Backend object must have, for the message refusing another value. */
export const BACKEND_SHAPE = 'a Backend: an object with executor (start(), close()), gates (an array of gates) and close()'

/**
 * Why `value` is not a {@link Backend} (`"executor.start is not a function"`), or undefined
 * when it is one. Checks the shape only: what the methods do is the backend's business.
 */
export function backendProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const backend = value as Record<string, unknown>
  const executor = backend.executor as Record<string, unknown> | null | undefined
  if (typeof executor !== 'object' || executor === null) return 'executor is not an object'
  for (const method of ['start', 'close']) if (typeof executor[method] !== 'function') return `executor.${method} is not a function`
  if (!Array.isArray(backend.gates)) return 'gates is not an array'
  const isGate = (g: unknown) => typeof (g as Gate | null)?.tryAcquire === 'function' && typeof (g as Gate).release === 'function'
  const gate = (backend.gates as unknown[]).findIndex((g) => !isGate(g))
  if (gate !== -1) return `gates[${gate}] is not a gate (tryAcquire(), release())`
  if (typeof backend.close !== 'function') return 'close is not a function'
  for (const method of ['prepare', 'ready']) {
    if (backend[method] !== undefined && typeof backend[method] !== 'function') return `${method} is neither undefined nor a function`
  }
  return undefined
}
