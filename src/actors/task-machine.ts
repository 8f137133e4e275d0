import { assign, fromPromise, setup } from 'xstate'
import type { SerializedError } from '../runtime/errors.ts'

/** The task states of DESIGN.md, exactly. */
export const TASK_STATES = ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const
export type TaskState = (typeof TASK_STATES)[number]
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'])

/** Error codes that another attempt cannot fix. */
const NOT_RETRYABLE: ReadonlySet<string> = new Set([
  'ERR_AGENT_LOAD',
  'ERR_OUTPUT_NOT_CLONEABLE',
  'ERR_CANCELLED',
  'ERR_BUDGET_EXCEEDED',
])

/** A failed attempt, as the `execute` actor rejects with it. */
export interface AttemptError extends SerializedError {
  /** Set by an agent (`error.retryable = false`) or by troupe for errors retrying cannot fix. */
  readonly retryable?: boolean
}

export interface ExecuteInput {
  readonly taskIndex: number
  readonly attempt: number
}

/** What the environment gives each task actor: the clock and the retry policy. */
export interface TaskEnvironment {
  readonly now: () => number
  /** Delay before attempt `attempt + 1`, after attempt `attempt` failed. */
  readonly retryDelay: (attempt: number) => number
}

export interface TaskMachineInput {
  readonly taskIndex: number
  /** 1 + retries. */
  readonly maxAttempts: number
  readonly timeoutMs: number
  readonly env: TaskEnvironment
}

export interface TaskContext {
  readonly taskIndex: number
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
}

export type TaskEvent =
  | { readonly type: 'DEPS_DONE' }
  | { readonly type: 'START' }
  | { readonly type: 'SKIP'; readonly error: SerializedError }
  | { readonly type: 'CANCEL'; readonly error: SerializedError }
  /** Ends the running attempt as failed without retry (e.g. the budget was exceeded). */
  | { readonly type: 'ABORT'; readonly error: SerializedError }
  /** The task completed in an earlier run of the same plan; its output is reused. */
  | { readonly type: 'RESTORE'; readonly output: unknown; readonly attempts: number }

function canRetry(context: TaskContext, error: AttemptError): boolean {
  return context.attempt < context.maxAttempts && error.retryable !== false && !NOT_RETRYABLE.has(error.code)
}

function toAttemptError(error: unknown): AttemptError {
  if (typeof error === 'object' && error !== null && typeof (error as AttemptError).code === 'string') {
    const e = error as AttemptError
    return { code: e.code, message: e.message, ...(e.cause ? { cause: e.cause } : {}), ...(e.retryable === false ? { retryable: false } : {}) }
  }
  const cause = error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : undefined
  return { code: 'ERR_TASK_FAILED', message: String((error as Error)?.message ?? error), ...(cause ? { cause } : {}) }
}

const timeoutError = (context: TaskContext): AttemptError => ({
  code: 'ERR_TASK_TIMEOUT',
  message: `Attempt ${context.attempt} timed out after ${context.timeoutMs} ms`,
})

function strip(error: AttemptError): SerializedError {
  const { retryable: _ignored, ...rest } = error
  return rest
}

/**
 * The lifecycle of one task: PENDING → QUEUED → RUNNING → COMPLETED / FAILED, plus SKIPPED
 * and CANCELLED. RUNNING invokes the `execute` actor (provided by the runtime: a piscina
 * worker; by tests: a fake). Leaving RUNNING for any reason stops that actor, which aborts
 * its signal, so a timed-out or cancelled attempt's worker is really stopped.
 */
export const taskMachine = setup({
  types: {
    input: {} as TaskMachineInput,
    context: {} as TaskContext,
    events: {} as TaskEvent,
  },
  actors: {
    execute: fromPromise<unknown, ExecuteInput>(async () => {
      throw new Error('taskMachine: the `execute` actor must be provided')
    }),
  },
  delays: {
    attemptTimeout: ({ context }) => context.timeoutMs,
  },
  guards: {
    canRetryError: ({ context, event }) => canRetry(context, toAttemptError((event as { error: unknown }).error)),
    canRetryTimeout: ({ context }) => canRetry(context, timeoutError(context)),
  },
}).createMachine({
  id: 'task',
  initial: 'PENDING',
  context: ({ input }) => ({
    taskIndex: input.taskIndex,
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
  }),
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
        SKIP: { target: 'SKIPPED', actions: assign({ error: ({ event }) => event.error }) },
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
          actions: assign(({ context }) => {
            const now = context.env.now()
            return { attempt: context.attempt + 1, attemptStartedAt: now, startedAt: context.startedAt ?? now, error: undefined }
          }),
        },
        SKIP: { target: 'SKIPPED', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    RUNNING: {
      invoke: {
        src: 'execute',
        input: ({ context }) => ({ taskIndex: context.taskIndex, attempt: context.attempt }),
        onDone: {
          target: 'COMPLETED',
          actions: assign(({ context, event }) => ({ ...finish(context, undefined), output: event.output })),
        },
        onError: [
          {
            guard: 'canRetryError',
            target: 'QUEUED',
            actions: assign(({ context, event }) => retry(context, toAttemptError(event.error))),
          },
          {
            target: 'FAILED',
            actions: assign(({ context, event }) => finish(context, strip(toAttemptError(event.error)))),
          },
        ],
      },
      after: {
        attemptTimeout: [
          { guard: 'canRetryTimeout', target: 'QUEUED', actions: assign(({ context }) => retry(context, timeoutError(context))) },
          { target: 'FAILED', actions: assign(({ context }) => finish(context, timeoutError(context))) },
        ],
      },
      on: {
        ABORT: { target: 'FAILED', actions: assign(({ context, event }) => finish(context, event.error)) },
      },
    },
    COMPLETED: { type: 'final' },
    FAILED: { type: 'final' },
    SKIPPED: { type: 'final' },
    CANCELLED: { type: 'final' },
  },
})

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
