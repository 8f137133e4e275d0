/**
 * The task states of docs/architecture.md ("Task lifecycle"), exactly. A leaf: importing it loads no xstate. `WAITING`: the
 * attempt runs, but waits in `ctx.spawn(…, { wait: true })` for the tasks it spawned, holding
 * no slot of its run. `AWAITING_APPROVAL`: held by its `approve` gate until a person approves
 * or rejects it (before its attempt starts, or after it succeeded and before its merge),
 * holding no slot, no gate and no timeout.
 */
export const TASK_STATES = [
  'PENDING',
  'QUEUED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'SKIPPED',
  'CANCELLED',
  'WAITING',
  'AWAITING_APPROVAL',
] as const
export type TaskState = (typeof TASK_STATES)[number]
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'])
