import type { RunResult } from '../runtime/report/result.ts'
import type { ClaimRegistry } from '../runtime/admission/claims.ts'
import type { Dispatcher } from '../runtime/admission/dispatcher.ts'
import type { Gate } from '../runtime/admission/gate.ts'
import type { GovernorReport } from '../runtime/governor/governor.ts'
import type { Limits } from '../runtime/admission/limits.ts'
import type { Clock } from '../runtime/core/clock.ts'
import type { ResolvedConfig } from '../runtime/core/config.ts'
import type { RunEvents } from '../runtime/report/events.ts'
import type { Executor } from '../runtime/execution/executor.ts'
import type { Mailbox } from '../runtime/coordination/mailbox.ts'
import type { Scratchpad } from '../runtime/coordination/scratchpad.ts'
import type { RunRecorder } from '../runtime/journal/recorder.ts'
import type { Strategy } from '../runtime/plan/plan.ts'
import type { RunPlan } from '../runtime/plan/run-plan.ts'

/** What a run is made of: its plan, its runtime's shared parts, and where its events go. */
export interface RunInit {
  readonly id: string
  /** The run's own view of its plan, which grows as tasks are added. */
  readonly plan: RunPlan
  readonly strategy: Strategy
  /** Validated by the caller; the sequential strategy runs one task at a time whatever it says. */
  readonly maxParallel: number
  readonly config: ResolvedConfig
  /** Runs the attempts (the local executor, or a remote backend). */
  readonly executor: Executor
  /** The run's directory for per-attempt logs; absent when the journal is off. */
  readonly runDir: string | undefined
  readonly dispatcher: Dispatcher
  readonly gates: readonly Gate[]
  /** Where `ctx.claim` / `ctx.release` go (also one of `gates`). */
  readonly claims?: ClaimRegistry
  /** Where `ctx.acquire` goes (also one of `gates`). */
  readonly limits?: Limits
  /** The governor's record of this run, for `RunResult.governor`; absent when the governor is off. */
  readonly governor?: { end(): GovernorReport }
  readonly clock: Clock
  readonly retryDelay: (attempt: number) => number
  readonly recorder: RunRecorder | undefined
  readonly signal: AbortSignal | undefined
  /** Receives every event of the run (the runtime re-emits them). */
  readonly forward: <K extends keyof RunEvents>(name: K, ...args: RunEvents[K]) => void
  /** Whether anyone outside the run listens to an event (the runtime's listeners). */
  readonly listening: (name: keyof RunEvents) => boolean
  /** Completes the result once every task has ended, before it is journaled and resolved (workspaces: cleanup, merge outcomes). */
  readonly finalize?: (result: RunResult) => Promise<RunResult>
  /** The run's scratchpad and mailbox, once open: what its attempts' listeners hand out. */
  readonly scratchpad?: () => Scratchpad | undefined
  readonly mailbox?: () => Mailbox | undefined
}

/** Where the machine's events go: the run handle's listeners and the runtime's. */
export interface RunOutlet {
  readonly emit: <K extends keyof RunEvents>(name: K, ...args: RunEvents[K]) => void
  readonly listening: (name: keyof RunEvents) => boolean
}

/** The sequential strategy means one task at a time: said here, and nowhere else. */
export function effectiveMaxParallel(strategy: Strategy, maxParallel: number): number {
  return strategy === 'sequential' ? 1 : maxParallel
}

