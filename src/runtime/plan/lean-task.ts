import { MAX_INPUT_DEPTH, MAX_TIMEOUT_MS, MAX_WHEN_LENGTH, PRIORITIES, nestsDeeperThan, type TaskFields } from './plan-schema.ts'

/**
 * The hot loop of plan validation: accepts a well-formed task with plain checks, or returns
 * undefined so that `TaskSchema` decodes it and explains what is wrong. Decoding 100,000 tasks
 * with Schema costs about as much as the rest of compiling; this costs a tenth of it.
 *
 * Invariant (property-tested): whatever this accepts, `TaskSchema` accepts too. It may be
 * stricter, never looser; `TaskSchema` stays the source of truth.
 */
export function leanTask(raw: unknown): TaskFields | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined
  const task = raw as Record<string, unknown>
  if (!nonEmptyString(task.id) || !nonEmptyString(task.agent)) return undefined
  for (const key of Object.keys(task)) {
    const check = CHECK_BY_KEY.get(key)
    if (check === undefined) return undefined
    const value = task[key]
    if (value !== undefined && !check(value)) return undefined
  }
  return task as TaskFields
}

type Check = (value: unknown) => boolean

/**
 * One check per field of `TaskSchema`, keyed by its fields: a field added to the schema does
 * not compile here until it has a check (`toTheSchema` leaves it to the schema). A value of
 * `undefined` counts as not given, as in the schema.
 */
const CHECKS: { readonly [K in keyof TaskFields]-?: Check } = {
  id: nonEmptyString,
  agent: nonEmptyString,
  input: (value) => !nestsDeeperThan(value, MAX_INPUT_DEPTH),
  dependsOn: strings,
  priority: (value) => PRIORITIES.includes(value as never),
  timeoutMs: (value) => integer(value, 1, MAX_TIMEOUT_MS),
  retries: (value) => integer(value, 0, Number.MAX_SAFE_INTEGER),
  estimateMs: (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0,
  claims: strings,
  uses: strings,
  stage: nonEmptyString,
  description: (value) => typeof value === 'string',
  tags: strings,
  resources: toTheSchema,
  when: (value) => typeof value === 'string' && value.trim().length > 0 && value.length <= MAX_WHEN_LENGTH,
  workspace: (value) => value === 'none' || value === 'worktree',
  approve: toTheSchema,
  repair: toTheSchema,
  check: toTheSchema,
  inputs: strings,
  cache: (value) => typeof value === 'boolean',
}
// A Map, not the object: a key such as `constructor` must not find Object.prototype's.
const CHECK_BY_KEY: ReadonlyMap<string, Check> = new Map(Object.entries(CHECKS))

/** Rare fields with nested rules: the schema decodes the task. */
function toTheSchema(): boolean {
  return false
}

function nonEmptyString(value: unknown): boolean {
  return typeof value === 'string' && value.length > 0
}

function strings(value: unknown): boolean {
  if (!Array.isArray(value)) return false
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string') return false
  return true
}

function integer(value: unknown, minimum: number, maximum: number): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= minimum && value <= maximum
}
