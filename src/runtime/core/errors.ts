/**
 * Every error troupe raises or records carries one of these stable codes
 * (listed in docs/library.md "Error codes"). Codes are API: add new ones, never rename.
 */
export const ERROR_CODES = [
  'ERR_PLAN_INVALID',
  'ERR_PLAN_CYCLE',
  'ERR_PLAN_UNKNOWN_DEPENDENCY',
  'ERR_PLAN_DUPLICATE_ID',
  'ERR_PLAN_UNKNOWN_AGENT',
  'ERR_CONFIG_INVALID',
  'ERR_ARGUMENT_INVALID',
  'ERR_AGENT_LOAD',
  'ERR_TASK_FAILED',
  'ERR_TASK_TIMEOUT',
  'ERR_WORKER_EXIT',
  'ERR_WORKER_OOM',
  'ERR_OUTPUT_NOT_CLONEABLE',
  'ERR_DEPENDENCY_FAILED',
  'ERR_CANCELLED',
  'ERR_BUDGET_EXCEEDED',
  'ERR_QUEUE_FULL',
  'ERR_RUNTIME_CLOSED',
  'ERR_WORKER_CRASH',
  'ERR_CRASH_LOOP',
  'ERR_COMMAND_FAILED',
  'ERR_AGENT_UNAVAILABLE',
  'ERR_RATE_LIMITED',
  'ERR_MERGE_CONFLICT',
  'ERR_VERIFY_FAILED',
  'ERR_RUN_LOCKED',
  'ERR_AGENT_MISMATCH',
  'ERR_JOB_REFUSED',
  'ERR_BACKEND_UNAVAILABLE',
  'ERR_CONDITION_FALSE',
  'ERR_JOURNAL_UNREADABLE',
  'ERR_SPAWN_WAIT_LIMIT',
  'ERR_GIT_TIMEOUT',
  'ERR_PERMISSION_DENIED',
  'ERR_TASK_NOT_DELEGATED',
  'ERR_MAILBOX_FULL',
  'ERR_APPROVAL_REJECTED',
  'ERR_APPROVAL_NOT_AWAITING',
  'ERR_APPROVAL_UNKNOWN_TASK',
  'ERR_CHECK_FAILED',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

/** A plain, structured-clone-able description of an error, as stored in results and journals. */
export interface SerializedError {
  readonly code: ErrorCode
  readonly message: string
  readonly cause?: { readonly name: string; readonly message: string; readonly stack?: string }
}

export class TroupeError extends Error {
  override readonly name = 'TroupeError'

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  toJSON(): SerializedError {
    return serializeError(this)
  }
}

export function isTroupeError(error: unknown, code?: ErrorCode): error is TroupeError {
  return error instanceof TroupeError && (code === undefined || error.code === code)
}

/**
 * What the user gave that is wrong or unusable before any task runs — plans (every
 * `ERR_PLAN_*`), config, arguments, agents, the run id, the journal, the backend: exit 2.
 */
export const INPUT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ...ERROR_CODES.filter((code) => code.startsWith('ERR_PLAN_')),
  'ERR_CONFIG_INVALID',
  'ERR_ARGUMENT_INVALID',
  'ERR_AGENT_UNAVAILABLE',
  'ERR_AGENT_LOAD',
  'ERR_RUN_LOCKED',
  'ERR_BACKEND_UNAVAILABLE',
  'ERR_JOURNAL_UNREADABLE',
  'ERR_APPROVAL_NOT_AWAITING',
  'ERR_APPROVAL_UNKNOWN_TASK',
])

export function serializeError(error: TroupeError): SerializedError {
  const cause = error.cause
  if (cause instanceof Error) {
    return {
      code: error.code,
      message: error.message,
      cause: { name: cause.name, message: cause.message, ...(cause.stack ? { stack: cause.stack } : {}) },
    }
  }
  if (isCauseLike(cause)) return { code: error.code, message: error.message, cause }
  return { code: error.code, message: error.message }
}

function isCauseLike(value: unknown): value is { name: string; message: string; stack?: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  )
}

/** Renders a received value for an error message: `0` (number), `"x"` (string). */
export function describeValue(value: unknown): string {
  if (value === undefined) return '`undefined`'
  if (value === null) return '`null`'
  if (Array.isArray(value)) return `\`${truncate(safeJson(value))}\` (array)`
  if (typeof value === 'object') return `\`${truncate(safeJson(value))}\` (object)`
  if (typeof value === 'string') return `\`${truncate(JSON.stringify(value))}\` (string)`
  return `\`${String(value)}\` (${typeof value})`
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

function truncate(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
