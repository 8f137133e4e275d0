/** The pipeline strategy's stages: names in order of first appearance, and each task's stage number. */
export interface StageOrder {
  /** Stage names in order of first appearance; a task without `stage` is in stage `''`. */
  readonly names: readonly string[]
  /** The stage number (index into `names`) of each task. */
  readonly index: Int32Array
}

type Staged = { readonly tasks: readonly { readonly stage?: string | undefined }[] }

const computed = new WeakMap<Staged, StageOrder>()

/**
 * The stage order of a plan, computed once per plan object (the scheduler's barriers and the
 * journal's stage checkpoints ask for the same fact). Pure.
 */
export function stageOrder(plan: Staged): StageOrder {
  let order = computed.get(plan)
  if (order === undefined) {
    const numbers = new Map<string, number>()
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
