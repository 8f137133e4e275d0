import type { Journal } from './journal.ts'
import type { CompiledPlan, CompiledTask } from '../plan/plan.ts'
import { stageOrder } from '../plan/stages.ts'
import type { Gate } from '../admission/gate.ts'

interface Pipeline {
  readonly journal: Journal
  /** Each task's previous stage (in order of first appearance), or undefined in the first. */
  readonly previousStage: readonly (string | undefined)[]
}

/**
 * The pipeline strategy's checkpoint between stages: a task of stage k+1 starts only once
 * stage k's end marker, and with it every record of stage k, is on disk (fdatasync'd). The
 * scheduler already holds stage k+1 back until stage k has ended; this gate adds durability,
 * so a crash during stage k+1 always resumes with all of stage k reused. A {@link Gate}
 * shared by the runtime's runs; runs of other strategies pass through.
 */
export class StageCheckpoint implements Gate {
  readonly #pipelines = new Map<string, Pipeline>()

  /** Holds run `runId`'s stages on `journal` until the run ends (`forget`). */
  track(runId: string, plan: CompiledPlan, journal: Journal): void {
    const { names, index } = stageOrder(plan)
    // The stage before each, among those with tasks (a hybrid plan may declare an empty one: it never ends in the journal).
    const used = new Set(index)
    const before = names.map((_, k) => {
      for (let at = k - 1; at >= 0; at--) if (used.has(at)) return names[at]
      return undefined
    })
    const previousStage = Array.from(index, (k) => before[k])
    this.#pipelines.set(runId, { journal, previousStage })
  }

  forget(runId: string): void {
    this.#pipelines.delete(runId)
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    const pipeline = this.#pipelines.get(runId)
    if (pipeline === undefined) return true
    const previous = pipeline.previousStage[task.index]
    return previous === undefined || pipeline.journal.isStageDurable(previous)
  }

  release(): void {}
}
