import * as Schema from 'effect/Schema'
import { STRATEGIES } from './strategies.ts'
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

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]

export { STRATEGIES, type Strategy } from './strategies.ts'

/**
 * Strategies a plan may name: {@link STRATEGIES} plus `hybrid` (stages with their own rules),
 * which is validated and compiled but runs as `pipeline` until the scheduler knows it.
 */
export const PLAN_STRATEGIES = [...STRATEGIES, 'hybrid'] as const
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

/** One task as written. */
export const TaskSchema = Schema.Struct({
  id: NonEmptyString.annotateKey({ messageMissingKey: 'a non-empty string' }),
  agent: NonEmptyString.annotateKey({ messageMissingKey: 'an agent name or module path' }),
  input: opt(Input),
  dependsOn: opt(Strings),
  priority: opt(oneOf(PRIORITIES)),
  timeoutMs: opt(integer(1, MAX_TIMEOUT_MS)),
  retries: opt(integer(0)),
  estimateMs: opt(number(0)),
  claims: opt(Strings),
  uses: opt(Strings),
  stage: opt(NonEmptyString),
  description: opt(expecting(Schema.String, 'a string')),
  tags: opt(Strings),
  resources: opt(expecting(Schema.Struct({ cpu: opt(number(0)), memoryMb: opt(number(0)) }), 'an object { cpu?, memoryMb? }').annotate({ title: 'resources' })),
  when: opt(
    expecting(
      Schema.String.check(Schema.makeFilter((s: string) => s.trim().length > 0 && s.length <= MAX_WHEN_LENGTH, { expected: `an expression of 1 to ${MAX_WHEN_LENGTH} characters` })),
      'an expression (a string)',
    ),
  ),
  workspace: opt(oneOf(WORKSPACE_MODES)),
  inputs: opt(Strings),
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
export const TASK_KEYS: ReadonlySet<string> = new Set(Object.keys(TaskSchema.fields))
