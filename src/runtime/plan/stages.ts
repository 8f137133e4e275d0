import { TroupeError } from '../core/errors.ts'
import { isStaged, type Strategy } from './strategies.ts'

/**
 * The pipeline strategy's stages: names in order of first appearance (a hybrid plan: in the
 * order `stages` declares them), and each task's stage number.
 */
export interface StageOrder {
  /** Stage names in order of first appearance; a task without `stage` is in stage `''`. */
  readonly names: readonly string[]
  /** The stage number (index into `names`) of each task. */
  readonly index: Int32Array
}

type Staged = {
  readonly tasks: readonly { readonly stage?: string | undefined }[]
  readonly stages?: Readonly<Record<string, unknown>> | undefined
}

const computed = new WeakMap<Staged, StageOrder>()

/**
 * The stage order of a plan, computed once per plan object (the scheduler's barriers and the
 * journal's stage checkpoints ask for the same fact). Pure.
 */
export function stageOrder(plan: Staged): StageOrder {
  let order = computed.get(plan)
  if (order === undefined) {
    // Hybrid: the declared order (the scheduler's barrier groups and the journal's checkpoints must agree).
    const numbers = new Map<string, number>(plan.stages === undefined ? [] : Object.keys(plan.stages).map((name, k) => [name, k]))
    const index = new Int32Array(plan.tasks.length)
    for (let i = 0; i < plan.tasks.length; i++) {
      const stage = plan.tasks[i]!.stage ?? ''
      let k = numbers.get(stage)
      if (k === undefined) numbers.set(stage, (k = numbers.size))
      index[i] = k
    }
    order = { names: [...numbers.keys()], index }
    computed.set(plan, order)
  }
  return order
}

type StagedGraph = Staged & { readonly deps: readonly (readonly number[])[]; readonly tasks: readonly { readonly id: string }[] }

/**
 * Throws ERR_PLAN_INVALID when a task depends on a task of a later stage: under `pipeline`
 * (and `hybrid`) a stage opens only once every earlier stage has ended, so such a task could
 * never run (regression: the run stopped after stage 1 with no message and never settled).
 */
export function checkStageDependencies(plan: StagedGraph): void {
  const { names, index } = stageOrder(plan)
  for (let task = 0; task < plan.tasks.length; task++) {
    for (const dep of plan.deps[task]!) {
      if (index[dep]! <= index[task]!) continue
      const [mine, theirs] = [names[index[task]!]!, names[index[dep]!]!]
      throw new TroupeError(
        'ERR_PLAN_INVALID',
        `Task "${plan.tasks[task]!.id}" (stage ${JSON.stringify(mine)}) depends on "${plan.tasks[dep]!.id}", ` +
          `which is in the later stage ${JSON.stringify(theirs)}; a stage starts only after every earlier stage has ended: ` +
          `move "${plan.tasks[dep]!.id}" to stage ${JSON.stringify(mine)} or an earlier one, or drop the dependency`,
      )
    }
  }
}

/**
 * A strategy given at run time (`--strategy`, the `strategy` run option) over a compiled plan:
 * `hybrid` needs the plan's declared `stages` (ERR_ARGUMENT_INVALID), and a staged strategy the
 * plan was not compiled for has its stage dependencies checked now (ERR_PLAN_INVALID).
 */
export function checkRunStrategy(strategy: Strategy, plan: StagedGraph & { readonly strategy?: Strategy | undefined }): void {
  if (strategy === 'hybrid' && plan.stages === undefined) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `Expected \`strategy\` "hybrid" only for a plan that declares \`stages\`; ` +
        `this plan declares none (its strategy is ${JSON.stringify(plan.strategy ?? 'concurrent')}): ` +
        'add `strategy: hybrid` and `stages:` to the plan, or run it with "pipeline"',
    )
  }
  if (isStaged(strategy) && plan.strategy !== strategy) checkStageDependencies(plan)
}
