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
    const previousStage = Array.from(index, (k) => (k === 0 ? undefined : names[k - 1]))
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
