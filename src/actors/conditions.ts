import type Jexl from 'jexl'
import type { SerializedError } from '../runtime/core/errors.ts'
import { jexl } from '../runtime/plan/condition.ts'
import type { CompiledTask } from '../runtime/plan/plan.ts'

/** What a task's `when` decided: run it, skip it, or fail it (the expression threw). */
export type ConditionVerdict = { readonly verdict: 'run' } | { readonly verdict: 'skip' | 'fail'; readonly error: SerializedError }

type Compiled = ReturnType<typeof Jexl.compile>

/**
 * Evaluates `when` conditions at run time, once a task's dependencies are done. The context
 * is `{ deps: { ID: { output } }, input }` (the task's own input); a dependency skipped by
 * its own condition has `output: undefined`. A truthy value runs the task.
 */
export class Conditions {
  readonly #compiled = new Map<string, Compiled>()

  decide(task: CompiledTask, outputOf: (dep: number) => unknown, depId: (dep: number) => string): ConditionVerdict {
    const source = task.when!
    let value: unknown
    try {
      let expression = this.#compiled.get(source)
      if (expression === undefined) this.#compiled.set(source, (expression = jexl().compile(source)))
      const deps = Object.create(null) as Record<string, { output: unknown }>
      for (const dep of task.deps) deps[depId(dep)] = { output: outputOf(dep) }
      value = expression.evalSync({ deps, input: task.input })
    } catch (error) {
      return {
        verdict: 'fail',
        error: {
          code: 'ERR_PLAN_INVALID',
          message: `The condition \`when\` of task "${task.id}", ${JSON.stringify(source)}, threw: ${(error as Error).message}`,
        },
      }
    }
    if (value) return { verdict: 'run' }
    return {
      verdict: 'skip',
      error: { code: 'ERR_CONDITION_FALSE', message: `Skipped: the condition \`when\` ${JSON.stringify(source)} of task "${task.id}" is false` },
    }
  }
}

/** The error of a task without `when` skipped because a dependency was skipped by its condition. */
export function conditionSkipError(skippedDeps: readonly string[]): SerializedError {
  return { code: 'ERR_CONDITION_FALSE', message: `Skipped: dependency ${skippedDeps.join(', ')} was skipped by its condition` }
}
