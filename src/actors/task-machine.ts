import { assign, setup } from 'xstate'
import type { SerializedError } from '../runtime/core/errors.ts'

export { TASK_STATES, TERMINAL_STATES, type TaskState } from '../runtime/core/task-state.ts'

/** Error codes that another attempt cannot fix. */
const NOT_RETRYABLE: ReadonlySet<string> = new Set([
  'ERR_AGENT_LOAD',
  'ERR_OUTPUT_NOT_CLONEABLE',
  'ERR_CANCELLED',
  'ERR_BUDGET_EXCEEDED',
  'ERR_APPROVAL_REJECTED',
])

/** A failed attempt, as the run reports it to the machine in a FAIL event. */
export interface AttemptError extends SerializedError {
  /** Set by an agent (`error.retryable = false`) or by troupe for errors retrying cannot fix. */
  readonly retryable?: boolean
}

/** What the environment gives each task actor: the clock and the retry policy. */
export interface TaskEnvironment {
  readonly now: () => number
  /** Delay before attempt `attempt + 1`, after attempt `attempt` failed. */
  readonly retryDelay: (attempt: number) => number
}

export interface TaskMachineInput {
  /** 1 + retries. */
  readonly maxAttempts: number
  readonly timeoutMs: number
  readonly env: TaskEnvironment
}

export interface TaskContext {
  readonly maxAttempts: number
  readonly timeoutMs: number
  readonly env: TaskEnvironment
  /** 1-based number of the current or last attempt; 0 before the first. */
  readonly attempt: number
  readonly output: unknown
  readonly error: SerializedError | undefined
  /** Start of the first attempt. */
  readonly startedAt: number | undefined
  readonly finishedAt: number | undefined
  /** Start of the current attempt. */
  readonly attemptStartedAt: number | undefined
  /** Sum of all attempts' durations. */
  readonly busyMs: number
  /** A retrying task is not started before this time. */
  readonly notBefore: number
  /** Completed in an earlier run; not run again. */
  readonly reused: boolean
  /** Its output came from the task cache (its last attempt ran no agent). */
  readonly cached: boolean
  /** Attempts that were rate-limited and re-queued without counting. */
  readonly rateLimited: number
}

export type TaskEvent =
  | { readonly type: 'DEPS_DONE' }
  | { readonly type: 'START' }
  /** The running attempt returned an output. */
  | { readonly type: 'SUCCEED'; readonly output: unknown; readonly cached?: true }
  /** The running attempt failed (agent threw, worker died, …). */
  | { readonly type: 'FAIL'; readonly error: AttemptError }
  /** The running attempt exceeded its timeoutMs. */
  | { readonly type: 'TIMEOUT' }
  | { readonly type: 'SKIP'; readonly error: SerializedError }
  /** A PENDING task that cannot run (its condition threw): FAILED without an attempt. */
  | { readonly type: 'REJECT'; readonly error: SerializedError }
  | { readonly type: 'CANCEL'; readonly error: SerializedError }
  /** Ends the running attempt as failed without retry (e.g. the budget was exceeded). */
  | { readonly type: 'ABORT'; readonly error: SerializedError }
  /**
   * The provider rate-limited the running attempt: back to QUEUED until `until`, the attempt
   * not counted; FAILED with ERR_RATE_LIMITED once `maxRateLimits` is used up.
   */
  | { readonly type: 'RATE_LIMITED'; readonly error: AttemptError; readonly until: number; readonly maxRateLimits: number }
  /** The running attempt waits in `ctx.spawn(…, { wait: true })`: RUNNING → WAITING. */
  | { readonly type: 'WAIT' }
  /** The waiting attempt has its slot again and goes on: WAITING → RUNNING. */
  | { readonly type: 'RESUME' }
  /**
   * The task's `approve` gate holds it: PENDING → AWAITING_APPROVAL (before start, instead
   * of DEPS_DONE), or RUNNING → AWAITING_APPROVAL (before merge: the attempt succeeded and
   * waits, parked, before its worktree is merged).
   */
  | { readonly type: 'HOLD' }
  /** Approved: back to QUEUED (before start) or to RUNNING, to merge (before merge). */
  | { readonly type: 'APPROVE' }
  /** The task completed in an earlier run of the same plan; its output is reused. */
  | { readonly type: 'RESTORE'; readonly output: unknown; readonly attempts: number }

function canRetry(context: TaskContext, error: AttemptError): boolean {
  return context.attempt < context.maxAttempts && error.retryable !== false && !NOT_RETRYABLE.has(error.code)
}

const timeoutError = (context: TaskContext): AttemptError => ({
  code: 'ERR_TASK_TIMEOUT',
  message: `Attempt ${context.attempt} timed out after ${context.timeoutMs} ms`,
})

function strip(error: AttemptError): SerializedError {
  const { retryable: _ignored, ...rest } = error
  return rest
}

/** An `assign` typed for the task machine, for transitions written outside `createMachine`. */
type Args = { context: TaskContext; event: TaskEvent }
const update = (fn: (args: Args) => Partial<TaskContext>) => assign<TaskContext, TaskEvent, undefined, TaskEvent, never>(fn)
type Of<T extends TaskEvent['type']> = Extract<TaskEvent, { type: T }>

/** How a live attempt (RUNNING or WAITING) can end: the same from both states. */
const attemptOutcomes = {
  SUCCEED: {
    target: 'COMPLETED',
    actions: update(({ context, event }) => succeeded(context, event as Of<'SUCCEED'>)),
  },
  FAIL: [
    { guard: 'canRetryError', target: 'QUEUED', actions: update(({ context, event }) => retry(context, (event as Of<'FAIL'>).error)) },
    { target: 'FAILED', actions: update(({ context, event }) => finish(context, strip((event as Of<'FAIL'>).error))) },
  ],
  TIMEOUT: [
    { guard: 'canRetryTimeout', target: 'QUEUED', actions: update(({ context }) => retry(context, timeoutError(context))) },
    { target: 'FAILED', actions: update(({ context }) => finish(context, timeoutError(context))) },
  ],
  ABORT: { target: 'FAILED', actions: update(({ context, event }) => finish(context, (event as Of<'ABORT'>).error)) },
  RATE_LIMITED: [
    {
      guard: ({ context, event }: Args) => context.rateLimited < (event as Of<'RATE_LIMITED'>).maxRateLimits,
      target: 'QUEUED',
      actions: update(({ context, event }) => ({
        ...finish(context, strip((event as Of<'RATE_LIMITED'>).error)),
        attempt: context.attempt - 1,
        rateLimited: context.rateLimited + 1,
        notBefore: (event as Of<'RATE_LIMITED'>).until,
      })),
    },
    {
      target: 'FAILED',
      actions: update(({ context, event }) => {
        const { error, maxRateLimits } = event as Of<'RATE_LIMITED'>
        return finish(context, {
          code: 'ERR_RATE_LIMITED',
          message: `Rate-limited ${context.rateLimited + 1} times (retry.rateLimitRetries is ${maxRateLimits}): ${error.message}`,
        })
      }),
    },
  ],
} as const

/**
 * The lifecycle of one task: PENDING → QUEUED → RUNNING → COMPLETED / FAILED, plus SKIPPED
 * and CANCELLED. The machine is pure: the run that owns it sends every event (START when a
 * slot is free, SUCCEED / FAIL when the worker answers, TIMEOUT from its clock), and the
 * machine decides what an outcome means: retry (back to QUEUED with a backoff), or a final
 * state. Keeping execution outside the machine (no invoked child actor, no delayed event per
 * attempt) makes an actor cost ~30 µs per task instead of ~100 µs.
 */
export const taskMachine = setup({
  types: {
    input: {} as TaskMachineInput,
    context: {} as TaskContext,
    events: {} as TaskEvent,
  },
  guards: {
    canRetryError: ({ context, event }) => canRetry(context, (event as { error: AttemptError }).error),
    canRetryTimeout: ({ context }) => canRetry(context, timeoutError(context)),
  },
}).createMachine({
  id: 'task',
  initial: 'PENDING',
  context: ({ input }) => initialContext(input),
  on: {
    CANCEL: {
      target: '.CANCELLED',
      actions: assign(({ context, event }) => finish(context, event.error)),
    },
  },
  states: {
    PENDING: {
      on: {
        DEPS_DONE: 'QUEUED',
        HOLD: 'AWAITING_APPROVAL',
        SKIP: { target: 'SKIPPED', actions: assign({ error: ({ event }) => event.error }) },
        REJECT: { target: 'FAILED', actions: assign({ error: ({ event }) => event.error }) },
        RESTORE: {
          target: 'COMPLETED',
          actions: assign(({ event }) => ({ output: event.output, attempt: event.attempts, reused: true })),
        },
      },
    },
    QUEUED: {
      on: {
        START: {
          target: 'RUNNING',
          actions: assign(({ context }) => started(context)),
        },
        SKIP: { target: 'SKIPPED', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    RUNNING: {
      on: { ...attemptOutcomes, WAIT: 'WAITING', HOLD: 'AWAITING_APPROVAL' },
    },
    // The attempt still runs (it may end, time out or be cancelled while it waits); it holds no slot.
    WAITING: {
      on: { ...attemptOutcomes, RESUME: 'RUNNING' },
    },
    // Held by its approve gate: no slot, no gate, no timeout. Before merge its attempt is live
    // (parked in the workspace, its output ready); before start it has none.
    AWAITING_APPROVAL: {
      on: {
        ...attemptOutcomes,
        APPROVE: [{ guard: ({ context }) => context.attemptStartedAt !== undefined, target: 'RUNNING' }, { target: 'QUEUED' }],
        REJECT: { target: 'FAILED', actions: assign(({ context, event }) => finish(context, event.error)) },
        SKIP: { target: 'SKIPPED', actions: assign(({ context, event }) => finish(context, event.error)) },
      },
    },
    COMPLETED: { type: 'final' },
    FAILED: { type: 'final' },
    SKIPPED: { type: 'final' },
    CANCELLED: { type: 'final' },
  },
})

/** A task's context before its first event. */
export function initialContext(input: TaskMachineInput): TaskContext {
  return {
    maxAttempts: input.maxAttempts,
    timeoutMs: input.timeoutMs,
    env: input.env,
    attempt: 0,
    output: undefined,
    error: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    attemptStartedAt: undefined,
    busyMs: 0,
    notBefore: 0,
    reused: false,
    cached: false,
    rateLimited: 0,
  }
}

/** QUEUED → RUNNING on START: the context's update. */
export function started(context: TaskContext): Partial<TaskContext> {
  const now = context.env.now()
  return { attempt: context.attempt + 1, attemptStartedAt: now, startedAt: context.startedAt ?? now, error: undefined }
}

/** RUNNING or WAITING → COMPLETED on SUCCEED: the context's update. */
export function succeeded(context: TaskContext, event: Of<'SUCCEED'>): Partial<TaskContext> {
  const update: { -readonly [K in keyof TaskContext]?: TaskContext[K] } = finish(context, undefined)
  update.output = event.output
  update.cached = event.cached === true
  return update
}

/** Closes the current attempt (if any) and records how the task ended. */
function finish(context: TaskContext, error: SerializedError | undefined): Partial<TaskContext> {
  const now = context.env.now()
  const running = context.attemptStartedAt !== undefined
  return {
    error,
    finishedAt: running ? now : context.finishedAt,
    busyMs: running ? context.busyMs + (now - context.attemptStartedAt!) : context.busyMs,
    attemptStartedAt: undefined,
  }
}

function retry(context: TaskContext, error: AttemptError): Partial<TaskContext> {
  const now = context.env.now()
  return {
    ...finish(context, strip(error)),
    notBefore: now + context.env.retryDelay(context.attempt),
  }
}

export type TaskMachine = typeof taskMachine
