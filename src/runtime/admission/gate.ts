import type { CompiledTask } from '../plan/plan.ts'

/**
 * A gate a ready task must pass to start (claims, named limits, stage checkpoints, the
 * rollback snapshot). Gates are shared across the runs of a runtime.
 */
export interface Gate {
  /** Takes what `task` needs and returns true, or returns false and takes nothing. */
  tryAcquire(runId: string, task: CompiledTask): boolean
  /**
   * True when a refusal is about the task's agent, not the task (a thread slot, the agent's
   * CPU), so that until the gate's state changes every ready task of that agent would be
   * refused too: an admission pass then skips them (see the scheduler's REFUSE_AGENT).
   */
  readonly refusesByAgent?: boolean
  /** Gives back what {@link tryAcquire} took, however the task ended. */
  release(runId: string, task: CompiledTask): void
  /**
   * Takes back what {@link tryAcquire} took in the same admission pass, because a later gate
   * refused the task. Unlike {@link release} it wakes nobody: nothing was freed that was not
   * just taken, and a wake here would start the same refused pass again, forever (regression:
   * a stage-2 task that `uses` a named limit spun the dispatcher at 100 % CPU). Gates
   * without it are rolled back with {@link release}, which must then wake nobody either.
   */
  undo?(runId: string, task: CompiledTask): void
  /**
   * The task's attempt waits for tasks it spawned: give back what a waiting attempt does not
   * use (a thread slot), or return false to keep it. Gates without this keep what they hold
   * (claims, named-limit units) while the task waits.
   */
  suspend?(runId: string, task: CompiledTask): boolean
  /** The waiting is over: take back what {@link suspend} gave, or return false (not free yet) and take nothing. */
  resume?(runId: string, task: CompiledTask): boolean
  /**
   * The attempt ended while suspended: give back what it still holds, instead of
   * {@link release}. Every gate with {@link suspend} has it.
   */
  releaseSuspended?(runId: string, task: CompiledTask): void
  /**
   * `task` is about to wait for tasks it spawns: why it may not (the message of
   * ERR_SPAWN_WAIT_LIMIT), or undefined when it may. Checked before the tasks are added.
   */
  checkWait?(runId: string, task: CompiledTask): string | undefined
}

/** What `ctx.claim(path)` resolves to inside an agent. */
export interface ClaimResult {
  readonly granted: boolean
  /** When refused: the id of a task holding an overlapping claim. */
  readonly holder?: string
  /** When refused: the run of that task. */
  readonly holderRunId?: string
  /** When refused for another reason than a holder: why (a path outside the run's root). */
  readonly reason?: string
}
