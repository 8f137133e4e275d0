import type { CompiledTask } from '../plan/plan.ts'

/**
 * A gate a ready task must pass to start (claims, named limits, stage checkpoints, the
 * rollback snapshot). Gates are shared across the runs of a runtime.
 */
export interface Gate {
  /** Takes what `task` needs and returns true, or returns false and takes nothing. */
  tryAcquire(runId: string, task: CompiledTask): boolean
  /** Gives back what {@link tryAcquire} took, however the task ended. */
  release(runId: string, task: CompiledTask): void
}

/** What `ctx.claim(path)` resolves to inside an agent. */
export interface ClaimResult {
  readonly granted: boolean
  /** When refused: the id of a task holding an overlapping claim. */
  readonly holder?: string
  /** When refused: the run of that task. */
  readonly holderRunId?: string
}
