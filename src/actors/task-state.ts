/** The task states of docs/architecture.md ("Task lifecycle"), exactly. A leaf: importing it loads no xstate. */
export const TASK_STATES = ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const
export type TaskState = (typeof TASK_STATES)[number]
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'])
