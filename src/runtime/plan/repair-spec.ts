import * as Schema from 'effect/Schema'

/**
 * Repair loops (docs/workspaces.md "Repair"): `repair: { attempts, on }` on a task or an
 * agent, and `check` on a task. Shapes only; which tasks they apply to is settled by
 * `parseWorkspaceSpec` (worktree tasks only).
 */

/** What a repair answers: a failing `integration.verify`, a merge conflict, a failing task `check`. */
export const REPAIR_REASONS = ['verify', 'conflict', 'check'] as const
export type RepairReason = (typeof REPAIR_REASONS)[number]

/** Most repairs of one attempt: each is a whole agent session, so more is a typo, not a plan. */
export const MAX_REPAIR_ATTEMPTS = 20

/** One repair of a worktree task (`RunResult.tasks[id].repairs`, the journal): the agent ran again in its worktree to fix what failed. */
export interface RepairRecord {
  /** The task's attempt the repair belongs to (repairs run inside an attempt, in its worktree). */
  readonly attempt: number
  readonly reason: RepairReason
  /** What the agent was asked to fix: the verify or check output's tail, or the conflicting files and hunks. */
  readonly detail: string
}

/** A task's repair policy, resolved: the task's `repair`, else its agent's. */
export interface RepairPolicy {
  /** Repairs after the first try, 1..{@link MAX_REPAIR_ATTEMPTS}. */
  readonly attempts: number
  /** @default all of {@link REPAIR_REASONS} */
  readonly on: readonly RepairReason[]
}

const expectedAttempts = `an integer from 1 to ${MAX_REPAIR_ATTEMPTS}`
const Attempts = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= 1 && n <= MAX_REPAIR_ATTEMPTS, {
    expected: expectedAttempts,
    toJsonSchema: () => ({ type: 'integer' as const, minimum: 1, maximum: MAX_REPAIR_ATTEMPTS, description: expectedAttempts }),
  }),
).annotate({ identifier: expectedAttempts })

const reasons = REPAIR_REASONS.map((r) => `"${r}"`).join(', ')
const Reasons = Schema.Array(Schema.Literals(REPAIR_REASONS).annotate({ identifier: `one of ${reasons}` })).annotate({
  identifier: `an array of ${reasons}`,
})

/** `repair` as written on a task or an agent. */
export const RepairSchema = Schema.Struct({
  attempts: Attempts.annotateKey({ messageMissingKey: expectedAttempts }),
  on: Schema.optional(Reasons),
}).annotate({ title: 'repair', identifier: `an object { attempts: 1..${MAX_REPAIR_ATTEMPTS}, on?: [${reasons}] }` })

/** A command: argv (no shell), or one string run by /bin/sh. */
export const CheckSchema = Schema.Union([
  Schema.String.check(Schema.makeFilter((s: string) => s.trim().length > 0, { expected: 'a non-empty command' })),
  Schema.Array(Schema.String).check(
    Schema.makeFilter((a: readonly string[]) => a.length > 0 && a[0]!.length > 0, { expected: 'a non-empty argv array' }),
  ),
]).annotate({ identifier: 'an argv array such as ["npm", "test"], or a command string run by /bin/sh' })

/** The policy of a decoded `repair` field. */
export function repairPolicy(raw: typeof RepairSchema.Type): RepairPolicy {
  return { attempts: raw.attempts, on: raw.on === undefined ? REPAIR_REASONS : [...new Set(raw.on)] }
}
