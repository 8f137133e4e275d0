import { join } from 'node:path'
import { ClaimRegistry } from '../../src/runtime/admission/claims.ts'
import { Dispatcher } from '../../src/runtime/admission/dispatcher.ts'
import type { Gate } from '../../src/runtime/admission/gate.ts'
import { Limits } from '../../src/runtime/admission/limits.ts'
import type { Clock } from '../../src/runtime/core/clock.ts'
import type { Backend } from '../../src/runtime/execution/backend.ts'
import { resolveConfig, type TroupeConfig } from '../../src/runtime/core/config.ts'
import type { AttemptHandle, AttemptListener, AttemptRequest, AttemptResult, Executor, WaitTasksRequest } from '../../src/runtime/execution/executor.ts'
import { Journal } from '../../src/runtime/journal/journal.ts'
import { StageCheckpoint } from '../../src/runtime/journal/stage-checkpoint.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import type { Plan, Strategy } from '../../src/runtime/plan/plan.ts'
import { RunPlan } from '../../src/runtime/plan/run-plan.ts'
import { Run } from '../../src/runtime/run.ts'

/** A module agent path for fake plans (the fake executor never loads it). */
export const FAKE_AGENT = join(import.meta.dirname, '..', 'fixtures', 'agents', 'noop.mjs')

/**
 * What a task of a fake plan does, read from its `input`: wait `ms` on the run's clock, then
 * (optionally) spawn `spawn.tasks` (waiting for them with `spawn.wait`), report `costUsd`,
 * and end: `fail` fails the attempt (retryable), `hang` never answers until aborted.
 */
export interface FakeBehaviour {
  readonly ms?: number
  readonly fail?: boolean
  readonly hang?: boolean
  readonly costUsd?: number
  readonly spawn?: { readonly tasks: readonly unknown[]; readonly wait: boolean }
  /** Then `wait_tasks` / `add_tasks` with wait, as a CLI agent's tool call: the answer is the output (a refusal fails the attempt with its code). */
  readonly waitTasks?: WaitTasksRequest
}

/**
 * An executor that runs no threads and no processes: each attempt follows its input's
 * {@link FakeBehaviour} on the given clock. Counts attempts started and in flight.
 */
export class FakeExecutor implements Executor {
  readonly name = 'local'
  started = 0
  inFlight = 0
  constructor(readonly clock: Clock) {}

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const behaviour = (request.input ?? {}) as FakeBehaviour
    this.started++
    this.inFlight++
    let settle!: (result: AttemptResult) => void
    let settled = false
    const result = new Promise<AttemptResult>((resolve) => {
      settle = (r) => {
        if (settled) return
        settled = true
        this.inFlight--
        resolve(r)
      }
    })
    const run = async () => {
      if (behaviour.hang) return
      let output: unknown = { taskId: request.taskId }
      if (behaviour.spawn !== undefined) {
        const answer = await listener.onSpawn(behaviour.spawn.tasks, { wait: behaviour.spawn.wait })
        if (!answer.ok) return settle({ ok: false, error: { ...answer.error, retryable: false } })
        output = { taskId: request.taskId, children: answer.outputs ?? answer.added }
      }
      if (behaviour.waitTasks !== undefined) {
        const answer = await listener.onWaitTasks!(behaviour.waitTasks)
        if (!answer.ok) return settle({ ok: false, error: { ...answer.error, retryable: false } })
        output = answer
      }
      if (behaviour.costUsd !== undefined) listener.onUsage({ costUsd: behaviour.costUsd })
      if (behaviour.fail) return settle({ ok: false, error: { code: 'ERR_TASK_FAILED', message: `${request.taskId} failed` } })
      settle({ ok: true, output })
    }
    const ms = behaviour.ms ?? 0
    if (ms > 0) this.clock.setTimeout(() => void run(), ms)
    else queueMicrotask(() => void run())
    return {
      result,
      abort: () => settle({ ok: false, error: { code: 'ERR_CANCELLED', message: `${request.taskId} aborted` } }),
    }
  }

  async close(): Promise<void> {}
}

/** A {@link Backend} around a {@link FakeExecutor}, recording what the runtime asked of it. */
export interface FakeBackend extends Backend {
  readonly executor: FakeExecutor
  /** `prepare` calls: the plan's name and the parallelism asked for. */
  readonly prepared: { readonly plan: string; readonly parallelism: number }[]
  /** `close` calls, with their `force`. */
  readonly closed: boolean[]
}

/**
 * A Backend for `createRuntime({ backend })` that starts no thread and no process: attempts
 * follow their input's {@link FakeBehaviour} on `clock`. `gates` are its admission gates.
 */
export function fakeBackend(clock: Clock, gates: readonly Gate[] = []): FakeBackend {
  const executor = new FakeExecutor(clock)
  const prepared: { plan: string; parallelism: number }[] = []
  const closed: boolean[] = []
  return {
    executor,
    gates,
    prepared,
    closed,
    prepare: async (plan, parallelism) => void prepared.push({ plan: plan.name, parallelism }),
    close: async (force = false) => {
      closed.push(force)
      await executor.close()
    },
  }
}

export interface FakeRunOptions {
  readonly clock: Clock
  readonly config?: TroupeConfig
  readonly strategy?: Strategy
  readonly maxParallel?: number
  /** Extra gates after claims and limits (e.g. thread slots). */
  readonly gates?: readonly Gate[]
  /**
   * Journal on, in this directory: the run is journaled and, under pipeline/hybrid, its stage
   * checkpoint gate is on (last, after the limits).
   */
  readonly journalDir?: string
  readonly executor?: FakeExecutor
  readonly dispatcher?: Dispatcher
}

/**
 * A Run of `plan` on a {@link FakeExecutor}: the real run machine, gates and scheduler, no
 * threads. Started once its journal (if any) is open.
 */
export function fakeRun(plan: Plan, options: FakeRunOptions): { run: Run; executor: FakeExecutor; limits: Limits } {
  const config = resolveConfig({
    governor: { enabled: false },
    checkpoint: { enabled: false },
    retry: { delayMs: 10, maxDelayMs: 10, jitter: false },
    ...options.config,
  })
  const compiled = compilePlan(plan, { baseDir: join(import.meta.dirname, '..', 'fixtures', 'agents') })
  const executor = options.executor ?? new FakeExecutor(options.clock)
  const dispatcher = options.dispatcher ?? new Dispatcher(Number.POSITIVE_INFINITY)
  const claims = new ClaimRegistry()
  const limits = new Limits(config.limits, options.clock, () => dispatcher.request())
  limits.check(compiled)
  const strategy = options.strategy ?? compiled.strategy ?? 'concurrent'
  const maxParallel = options.maxParallel ?? compiled.maxParallel ?? config.maxParallel
  const id = `fake-${Math.random().toString(36).slice(2, 8)}`
  const runPlan = new RunPlan(compiled)
  const gates: Gate[] = [...(options.gates ?? []), claims, limits]
  const journal =
    options.journalDir === undefined
      ? undefined
      : new Journal({
          dir: options.journalDir,
          runId: id,
          plan: runPlan,
          strategy,
          maxParallel,
          models: {},
          now: () => options.clock.now(),
          onStageDurable: () => dispatcher.request(),
        })
  if (journal !== undefined && strategy === 'pipeline') {
    const checkpoint = new StageCheckpoint()
    checkpoint.track(id, runPlan, journal)
    gates.push(checkpoint)
  }
  const run = new Run({
    id,
    plan: runPlan,
    strategy,
    maxParallel,
    config,
    executor,
    runDir: undefined,
    dispatcher,
    gates,
    claims,
    limits,
    clock: options.clock,
    retryDelay: () => 10,
    recorder: journal,
    signal: undefined,
    forward: () => {},
    listening: () => false,
  })
  void (journal?.open() ?? Promise.resolve()).then(() => run.start())
  void run.result.then(() => limits.close())
  return { run, executor, limits }
}
