import * as Schema from 'effect/Schema'
import { STRATEGIES } from './strategies.ts'
import { CheckSchema, RepairSchema } from './repair-spec.ts'
import { WORKSPACE_MODES } from './workspace-spec.ts'

/**
 * The shape of a plan (docs/plans.md) as effect Schemas: the single source of truth for
 * which keys exist, their types and their bounds. Links between tasks (ids, dependencies,
 * agents, stages, conditions) are checked by `linkPlan`, which needs the whole plan.
 */

/** Most tasks a plan may run at once (`maxParallel`); more is a typo, not a machine. */
export const MAX_PARALLEL = 10_000
/** Node clamps a timer above 2^31-1 ms to 1 ms, so a longer timeout would fire at once. */
export const MAX_TIMEOUT_MS = 2_147_483_647
/** Deepest nesting of a task's `input`; checked iteratively, so hostile input cannot overflow the stack. */
export const MAX_INPUT_DEPTH = 64
/** Longest `when` expression. */
export const MAX_WHEN_LENGTH = 1_000

/** When an `approve` gate holds a task: before its attempt starts, or before its worktree is merged. */
export const APPROVAL_POINTS = ['start', 'merge'] as const
export type ApprovalPoint = (typeof APPROVAL_POINTS)[number]

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]

export { STRATEGIES, type Strategy } from './strategies.ts'

/** Strategies a plan may name: the same as {@link STRATEGIES} (`hybrid` included); the name is kept for the public API. */
export const PLAN_STRATEGIES = STRATEGIES
export type PlanStrategy = (typeof PLAN_STRATEGIES)[number]

// `optional`: a key given as `undefined` counts as not given, as with `??` defaults everywhere.
const opt = Schema.optional

/** Names what a schema expects in messages (`expected an array of strings`); effect reads the `identifier`. */
function expecting<S extends Schema.Top>(schema: S, expected: string): S['Rebuild'] {
  return schema.annotate({ identifier: expected })
}

function oneOf<const L extends readonly [string, ...string[]]>(literals: L) {
  return expecting(Schema.Literals(literals), `one of ${literals.map((l) => `"${l}"`).join(', ')}`)
}

function integer(minimum: number, maximum = Number.MAX_SAFE_INTEGER): Schema.Number {
  const expected = maximum === Number.MAX_SAFE_INTEGER ? `an integer >= ${minimum}` : `an integer from ${minimum} to ${maximum}`
  const bounds = maximum === Number.MAX_SAFE_INTEGER ? { minimum } : { minimum, maximum }
  const toJsonSchema = () => ({ type: 'integer' as const, ...bounds, description: expected })
  return expecting(Schema.Number.check(Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= minimum && n <= maximum, { expected, toJsonSchema })), expected)
}

function number(minimum: number): Schema.Number {
  const expected = `a number >= ${minimum}`
  const toJsonSchema = () => ({ minimum, description: expected })
  return expecting(Schema.Number.check(Schema.makeFilter((n: number) => Number.isFinite(n) && n >= minimum, { expected, toJsonSchema })), expected)
}

const NonEmptyString = expecting(
  Schema.String.check(Schema.makeFilter((s: string) => s.length > 0, { expected: 'a non-empty string', toJsonSchema: () => ({ minLength: 1 }) })),
  'a non-empty string',
)
const Strings = expecting(Schema.Array(Schema.String), 'an array of strings')

/** Whether `value` nests deeper than `max` levels of objects and arrays. Iterative; O(nodes × max) at worst. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  // A node reached again at no greater depth adds nothing, so shared subtrees are walked at most `max` times.
  const seenAt = new Map<object, number>()
  const stack: [object, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (depth > max) return true
    const seen = seenAt.get(node)
    if (seen !== undefined && seen >= depth) continue
    seenAt.set(node, depth)
    for (const key in node) {
      if (!Object.hasOwn(node, key)) continue
      const child = (node as Record<string, unknown>)[key]
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
    }
  }
  return false
}

const Input = Schema.Unknown.check(
  Schema.makeFilter((value: unknown) => !nestsDeeperThan(value, MAX_INPUT_DEPTH), {
    expected: `a value nested at most ${MAX_INPUT_DEPTH} levels deep`,
  }),
)

/**
 * One task as written (docs/plans.md): the one declaration of a task's fields. `TaskSpec`
 * (the public type) is its `Type`, and `CompiledTask` derives from it; a new field added here
 * reaches both, and tsc then names the two functions that must handle it: `leanTask`'s
 * checks and `compileTask`.
 */
export const TaskSchema = Schema.Struct({
  /** Unique within the plan. */
  id: NonEmptyString.annotateKey({ messageMissingKey: 'a non-empty string' }),
  /** A key of `plan.agents`, or a module path (`./agents/x.mjs`) relative to the plan. */
  agent: NonEmptyString.annotateKey({ messageMissingKey: 'an agent name or module path' }),
  /** Any structured-clone-able value, nested at most 64 levels deep, handed to the agent as its first argument. */
  input: opt(Input),
  /** Ids of the tasks that must COMPLETE before this one starts. */
  dependsOn: opt(Strings),
  /** @default 'medium' */
  priority: opt(oneOf(PRIORITIES)),
  /** Per attempt, at most 2,147,483,647 (the longest timer Node keeps). @default config.timeoutMs */
  timeoutMs: opt(integer(1, MAX_TIMEOUT_MS)),
  /** Extra attempts after the first. @default config.retry.maxRetries */
  retries: opt(integer(0)),
  /** Expected duration, for critical-path ordering and estimates. */
  estimateMs: opt(number(0)),
  /** Files or resources it writes (paths or globs): overlapping claims never run at once. */
  claims: opt(Strings),
  /** Named limits (config.limits) it holds one unit of while it runs. */
  uses: opt(Strings),
  /** Pipeline strategy: stages run in order of first appearance. Hybrid: a key of `plan.stages`. */
  stage: opt(NonEmptyString),
  /** Shown by `troupe plan` and views; never interpreted. */
  description: opt(expecting(Schema.String, 'a string')),
  /** Shown by `troupe plan` and views; never interpreted. */
  tags: opt(Strings),
  /** A prior for the governor (it learns the real demand per agent). */
  resources: opt(expecting(Schema.Struct({ cpu: opt(number(0)), memoryMb: opt(number(0)) }), 'an object { cpu?, memoryMb? }').annotate({ title: 'resources' })),
  /** Runs the task only if this expression over `deps.ID.output…` and `input…` is true, e.g. `deps.check.output.ok == true`. */
  when: opt(
    expecting(
      Schema.String.check(Schema.makeFilter((s: string) => s.trim().length > 0 && s.length <= MAX_WHEN_LENGTH, { expected: `an expression of 1 to ${MAX_WHEN_LENGTH} characters` })),
      'an expression (a string)',
    ),
  ),
  /** Where the task works: the plan's directory (`none`) or a git worktree of its own. @default the plan's `workspace` */
  workspace: opt(oneOf(WORKSPACE_MODES)),
  approve: opt(
    expecting(
      Schema.Union([
        expecting(Schema.Boolean, 'a boolean'),
        Schema.Struct({ before: oneOf(APPROVAL_POINTS).annotateKey({ messageMissingKey: 'one of "start", "merge"' }) }),
      ]),
      'true, false or { before: "start" | "merge" }',
    ),
  ),
  // Repair loops (docs/workspaces.md "Repair"); worktree tasks only (parseWorkspaceSpec).
  repair: opt(RepairSchema),
  check: opt(CheckSchema),
  /**
   * Files whose contents the task's output depends on (globs relative to the plan's directory,
   * which they may not leave): part of its cache key (docs/plans.md "Caching across runs").
   */
  inputs: opt(Strings),
  /** Reuse the output of an earlier run with the same definition, inputs and dependency outputs. @default the plan's `cache`, else false */
  cache: opt(expecting(Schema.Boolean, 'a boolean')),
}).annotate({ title: 'task', identifier: 'a task: an object with `id` and `agent`' })

/** The rule of one stage of a `hybrid` plan. */
export const StageSchema = Schema.Struct({
  parallel: expecting(Schema.Boolean, 'a boolean').annotateKey({ messageMissingKey: 'true (tasks of the stage run at once) or false (one at a time)' }),
  maxParallel: opt(integer(1, MAX_PARALLEL)),
  failFast: opt(expecting(Schema.Boolean, 'a boolean')),
}).annotate({ title: 'stage', identifier: 'an object { parallel, maxParallel?, failFast? }' })

/** The plan around its tasks; tasks and agents are decoded one by one by `linkPlan`. */
export const PlanSchema = Schema.Struct({
  /** A JSON plan file's editor schema (`troupe schema plan`); ignored. */
  $schema: opt(expecting(Schema.String, 'a string')),
  name: opt(expecting(Schema.String, 'a string')),
  strategy: opt(oneOf(PLAN_STRATEGIES)),
  maxParallel: opt(integer(1, MAX_PARALLEL)),
  agents: opt(expecting(Schema.Record(Schema.String, Schema.Unknown), 'an object of agent name → module path or agent definition')),
  stages: opt(expecting(Schema.Record(Schema.String, StageSchema), 'an object of stage name → { parallel, maxParallel?, failFast? }')),
  // Workspaces: the mode is checked here, the rest (templates, commands, paths) by parseWorkspaceSpec.
  workspace: opt(oneOf(WORKSPACE_MODES)),
  integration: opt(Schema.Unknown),
  setup: opt(Schema.Unknown),
  copy: opt(Schema.Unknown),
  /** The default of every task's `cache`. */
  cache: opt(expecting(Schema.Boolean, 'a boolean')),
  tasks: expecting(
    Schema.Array(Schema.Unknown).check(Schema.makeFilter((tasks: readonly unknown[]) => tasks.length > 0, { expected: 'at least one task' })),
    'an array of tasks',
  ).annotateKey({ messageMissingKey: 'an array of tasks' }),
}).annotate({ title: 'plan', identifier: 'a plan: an object with `tasks`' })

export type TaskFields = typeof TaskSchema.Type
export type StageFields = typeof StageSchema.Type
