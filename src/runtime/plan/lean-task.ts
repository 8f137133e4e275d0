import { MAX_INPUT_DEPTH, MAX_TIMEOUT_MS, MAX_WHEN_LENGTH, PRIORITIES, TASK_KEYS, nestsDeeperThan, type TaskFields } from './plan-schema.ts'

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
  for (const key of Object.keys(task)) if (!TASK_KEYS.has(key)) return undefined
  const { id, agent, input, dependsOn, priority, timeoutMs, retries, estimateMs, claims, uses, stage, description, tags, resources, when, workspace } = task
  const { inputs, cache } = task
  if (typeof id !== 'string' || id.length === 0 || typeof agent !== 'string' || agent.length === 0) return undefined
  if (!optionalStrings(dependsOn) || !optionalStrings(claims) || !optionalStrings(uses) || !optionalStrings(tags)) return undefined
  if (!optionalStrings(inputs)) return undefined
  if (cache !== undefined && typeof cache !== 'boolean') return undefined
  if (priority !== undefined && !PRIORITIES.includes(priority as never)) return undefined
  if (!optionalInteger(timeoutMs, 1, MAX_TIMEOUT_MS) || !optionalInteger(retries, 0, Number.MAX_SAFE_INTEGER)) return undefined
  if (estimateMs !== undefined && !(typeof estimateMs === 'number' && Number.isFinite(estimateMs) && estimateMs >= 0)) return undefined
  if (stage !== undefined && !(typeof stage === 'string' && stage.length > 0)) return undefined
  if (description !== undefined && typeof description !== 'string') return undefined
  if (when !== undefined && !(typeof when === 'string' && when.trim().length > 0 && when.length <= MAX_WHEN_LENGTH)) return undefined
  if (resources !== undefined) return undefined
  if (workspace !== undefined && workspace !== 'none' && workspace !== 'worktree') return undefined
  if (nestsDeeperThan(input, MAX_INPUT_DEPTH)) return undefined
  return task as TaskFields
}

function optionalStrings(value: unknown): boolean {
  if (value === undefined) return true
  if (!Array.isArray(value)) return false
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string') return false
  return true
}

function optionalInteger(value: unknown, minimum: number, maximum: number): boolean {
  return value === undefined || (typeof value === 'number' && Number.isSafeInteger(value) && value >= minimum && value <= maximum)
}
