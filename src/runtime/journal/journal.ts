import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, truncate, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { CompiledPlan, CompiledTask, Strategy } from '../plan/plan.ts'
import type { RunResult, TaskResult } from '../core/result.ts'
import { journalFile, resultFile } from './paths.ts'
import type { RunRecorder } from './recorder.ts'

export { journalFile, resultFile }

/** The journal of run `runId` under the checkpoint directory: one JSON object per line. */

export type JournalRecord =
  | {
      readonly type: 'run-start'
      readonly runId: string
      readonly name: string
      readonly strategy: Strategy
      readonly maxParallel: number
      readonly tasks: number
      /** Tasks taken from earlier runs with this id. */
      readonly reused: number
      /** The plan's shape, for reports: each task's id, agent and dependencies (not inputs). */
      readonly plan: { readonly tasks: readonly { readonly id: string; readonly agent: string; readonly dependsOn: readonly string[] }[] }
      readonly at: number
    }
  | ({
      readonly type: 'task'
      readonly id: string
      /** Hash of the task's definition; a resumed run reuses the output only if it still matches. */
      readonly hash: string
      readonly attempt: number
      readonly at: number
      /** Set when the output could not be written as JSON, so it cannot be reused. */
      readonly outputUnavailable?: true
    } & Omit<TaskResult, 'attempts'>)
  | {
      /** Pipeline strategy: every task of `stage` has ended; the journal is durable up to here. */
      readonly type: 'stage'
      readonly stage: string
      readonly completed: boolean
      readonly at: number
    }
  | { readonly type: 'run-end'; readonly status: RunResult['status']; readonly totals: RunResult['totals']; readonly at: number }

export interface JournalOptions {
  /** The checkpoint directory, absolute. */
  readonly dir: string
  readonly runId: string
  readonly plan: CompiledPlan
  readonly strategy: Strategy
  readonly maxParallel: number
  /** Model per agent (`config.models`): part of a task's definition. */
  readonly models: Readonly<Record<string, string>>
  readonly now: () => number
  /** Pipeline strategy: called when a stage's end marker (and all before it) is on disk. */
  readonly onStageDurable?: (stage: string) => void
}

interface Reusable {
  readonly output: unknown
  readonly attempts: number
}

/**
 * The append-only journal of one run, and what a resumed run reuses from it.
 *
 * Durability: task records are appended in groups ("group commit"): every record that
 * arrives while a write + fdatasync is in flight goes out in the next single write. So each
 * completion is durable before (or together with) the next group's, and a burst of
 * thousands of completions costs a handful of fsyncs, not thousands.
 *
 * Resume: {@link open} reads an existing journal. A task is reused when its last record is
 * COMPLETED with a readable output, its definition hash still matches, and every dependency
 * is reused too. A torn last line (the process died mid-write) is ignored and cut off before
 * appending. Tasks that were RUNNING at the crash have no terminal record and run again.
 */
export class Journal implements RunRecorder {
  readonly reused = new Map<number, Reusable>()
  readonly file: string
  readonly #options: JournalOptions
  readonly #hashes: string[]
  /** Pipeline strategy: tasks of each stage not yet ended. */
  readonly #stageLeft = new Map<string, number>()
  readonly #stageFailed = new Set<string>()
  readonly #durableStages = new Set<string>()
  /** Stage markers in {@link #pending}, made durable with it. */
  #pendingStages: string[] = []
  /** A write failed: nothing more can be made durable, so nothing waits for it. */
  #broken = false
  #handle: FileHandle | undefined
  #pending: string[] = []
  #flushing: Promise<void> | undefined
  #opening: Promise<void> | undefined
  /** The journal could not be opened: the run goes on without one. */
  #disabled = false
  #warned = false

  constructor(options: JournalOptions) {
    this.#options = options
    this.file = journalFile(options.dir, options.runId)
    this.#hashes = definitionHashes(options.plan, options.models)
    if (options.strategy === 'pipeline') {
      for (const task of options.plan.tasks) this.#stageLeft.set(task.stage ?? '', (this.#stageLeft.get(task.stage ?? '') ?? 0) + 1)
    }
  }

  /**
   * Pipeline strategy: whether stage `stage` has ended and its records are on disk. True
   * when the journal cannot be written, so that a broken disk does not stall the run.
   */
  isStageDurable(stage: string): boolean {
    return this.#disabled || this.#broken || this.#durableStages.has(stage)
  }

  /** Hash of task `index`'s definition (agent, module, model, input, and its dependencies' hashes). */
  hashOf(index: number): string {
    return this.#hashes[index]!
  }

  /**
   * Reads what an earlier run with this id left, then opens the journal for appending. Never
   * rejects: when the journal cannot be read or written, a warning is emitted and the run
   * goes on without one (and without reuse).
   */
  open(): Promise<void> {
    this.#opening ??= this.#open().catch((error: unknown) => {
      this.#disabled = true
      this.reused.clear()
      this.#pending = []
      this.#warn(error)
    })
    return this.#opening
  }

  async #open(): Promise<void> {
    const { dir, runId, plan, strategy, maxParallel } = this.#options
    await mkdir(join(dir, runId), { recursive: true })
    let text = ''
    try {
      text = await readFile(this.file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    const end = text.lastIndexOf('\n') + 1
    if (end < text.length) await truncate(this.file, Buffer.byteLength(text.slice(0, end)))
    this.#findReusable(text.slice(0, end))
    this.#handle = await open(this.file, 'a')
    const shape = plan.tasks.map((task) => ({ id: task.id, agent: task.agent, dependsOn: task.deps.map((dep) => plan.tasks[dep]!.id) }))
    this.#append({
      type: 'run-start',
      runId,
      name: plan.name,
      strategy,
      maxParallel,
      tasks: plan.tasks.length,
      reused: this.reused.size,
      plan: { tasks: shape },
      at: this.#options.now(),
    })
    await this.#flushing
  }

  taskEnded(task: CompiledTask, result: TaskResult): void {
    if (this.#disabled) return
    // Built field by field: rest/spread of the result cost more than the JSON itself, per task.
    const record = {
      type: 'task' as const,
      id: task.id,
      hash: this.#hashes[task.index]!,
      attempt: result.attempts,
      at: this.#options.now(),
      state: result.state,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      durationMs: result.durationMs,
      output: result.output,
      error: result.error,
      reused: result.reused,
      outputUnavailable: undefined as true | undefined,
    }
    let line: string
    try {
      line = JSON.stringify(record)
    } catch {
      record.output = undefined
      record.outputUnavailable = true
      line = JSON.stringify(record)
    }
    this.#pending.push(`${line}\n`)
    if (this.#stageLeft.size > 0) this.#stageEnded(task, result)
    this.#flushSoon()
  }

  async runEnded(result: RunResult): Promise<void> {
    await this.#opening
    if (this.#disabled) return
    this.#append({ type: 'run-end', status: result.status, totals: result.totals, at: this.#options.now() })
    await this.#flushing
    await this.#handle?.close()
    this.#handle = undefined
    // Indented for people to read; compact past a thousand tasks, where it is for programs.
    const text = result.totals.tasks > 1000 ? JSON.stringify(result) : JSON.stringify(result, null, 2)
    await writeDurably(resultFile(this.#options.dir, this.#options.runId), `${text}\n`)
  }

  #findReusable(text: string): void {
    const last = new Map<string, { state: string; hash: string; attempt: number; output?: unknown; outputUnavailable?: boolean }>()
    for (const line of text.split('\n')) {
      if (line === '') continue
      let record: { type?: unknown; id?: unknown }
      try {
        record = JSON.parse(line)
      } catch {
        continue
      }
      if (record?.type === 'task' && typeof record.id === 'string') last.set(record.id, record as never)
    }
    if (last.size === 0) return
    const { plan } = this.#options
    for (const index of plan.order) {
      const task = plan.tasks[index]!
      const record = last.get(task.id)
      if (record?.state !== 'COMPLETED' || record.outputUnavailable || record.hash !== this.#hashes[index]) continue
      if (!task.deps.every((dep) => this.reused.has(dep))) continue
      this.reused.set(index, { output: record.output, attempts: record.attempt })
    }
  }

  #stageEnded(task: CompiledTask, result: TaskResult): void {
    const stage = task.stage ?? ''
    if (result.state !== 'COMPLETED') this.#stageFailed.add(stage)
    const left = this.#stageLeft.get(stage)! - 1
    this.#stageLeft.set(stage, left)
    if (left === 0) {
      this.#pending.push(`${JSON.stringify({ type: 'stage', stage, completed: !this.#stageFailed.has(stage), at: this.#options.now() })}\n`)
      this.#pendingStages.push(stage)
    }
  }

  #append(record: JournalRecord): void {
    this.#pending.push(`${JSON.stringify(record)}\n`)
    this.#flushSoon()
  }

  #flushSoon(): void {
    this.#flushing ??= this.#flush()
  }

  async #flush(): Promise<void> {
    // Let the records of tasks ending in the same turn join this group.
    await Promise.resolve()
    try {
      while (this.#pending.length > 0 && this.#handle !== undefined && !this.#disabled) {
        const chunk = this.#pending.join('')
        const stages = this.#pendingStages
        this.#pending = []
        this.#pendingStages = []
        await this.#handle.write(chunk)
        await this.#handle.datasync()
        for (const stage of stages) this.#stageDurable(stage)
      }
    } catch (error) {
      this.#broken = true
      this.#warn(error)
      for (const stage of this.#stageLeft.keys()) this.#stageDurable(stage)
    } finally {
      this.#flushing = undefined
    }
  }

  #stageDurable(stage: string): void {
    if (this.#durableStages.has(stage)) return
    this.#durableStages.add(stage)
    this.#options.onStageDurable?.(stage)
  }

  #warn(error: unknown): void {
    if (this.#warned) return
    this.#warned = true
    process.emitWarning(`troupe: cannot write the journal ${this.file}: ${(error as Error).message}; the run goes on, but cannot be resumed from here`, 'TroupeJournalWarning')
  }
}

/**
 * Definition hashes in a Merkle fashion: a task's hash covers its dependencies' hashes, so
 * changing a task also invalidates everything downstream of it. Execution settings
 * (priority, timeout, retries, estimates) are left out: they do not change what a task makes.
 */
function definitionHashes(plan: CompiledPlan, models: Readonly<Record<string, string>>): string[] {
  const hashes = new Array<string>(plan.tasks.length)
  for (const index of plan.order) {
    const task = plan.tasks[index]!
    const hash = createHash('sha256')
    hash.update(`${task.id}\0${task.agent}\0${task.moduleUrl}\0${models[task.agent] ?? ''}\0${jsonOf(task.input)}`)
    for (const dep of task.deps) hash.update(`\0${hashes[dep]}`)
    hashes[index] = hash.digest('base64url').slice(0, 22)
  }
  return hashes
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'undefined'
  } catch {
    return String(value)
  }
}

/** Writes a file so that a crash leaves either the old content or the new, never half. */
async function writeDurably(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`
  const handle = await open(temp, 'w')
  try {
    await handle.writeFile(text)
    await handle.datasync()
  } finally {
    await handle.close()
  }
  await rename(temp, file)
}
