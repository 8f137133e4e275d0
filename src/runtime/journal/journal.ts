import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { open, rename, rm, truncate, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CompiledTask, Strategy } from '../plan/plan.ts'
import type { RunPlan } from '../plan/run-plan.ts'
import { isStaged } from '../plan/strategies.ts'
import { TroupeError } from '../core/errors.ts'
import type { RepairRecord, RunResult, TaskResult } from '../report/result.ts'
import { isPlain, stringify } from './codec.ts'
import { RunLock } from './lock.ts'
import { PROCESSES_FILE, stopLeftovers } from './process-ledger.ts'
import { ensureCheckpointDir, journalFile, resultFile, runDir } from './paths.ts'
import { seal } from './integrity.ts'
import { readJournal, summarize, unreadable, type JournalContents, type JournalSummary } from './reader.ts'
import type { JournalRecord } from './records.ts'
import type { ApprovalRecord, RunRecorder } from './recorder.ts'

type TaskRecord = Extract<JournalRecord, { readonly type: 'task' }>

/** A record field JSON.stringify writes as the codec would: absent (undefined), or plain JSON. */
function absentOrPlain(value: unknown): boolean {
  return value === undefined || isPlain(value)
}

export { journalFile, resultFile }

export type { JournalRecord }

export interface JournalOptions {
  /** The checkpoint directory, absolute. */
  readonly dir: string
  readonly runId: string
  /** The run's plan: the journal re-adds the tasks an earlier run with this id added, and records new additions. */
  readonly plan: RunPlan
  readonly strategy: Strategy
  readonly maxParallel: number
  /** Model per agent (`config.models`): part of a task's definition. */
  readonly models: Readonly<Record<string, string>>
  readonly now: () => number
  /** Pipeline and hybrid strategies: called when a stage's end marker (and all before it) is on disk. */
  readonly onStageDurable?: (stage: string) => void
}

interface Reusable {
  readonly output: unknown
  readonly attempts: number
  readonly repairs?: readonly RepairRecord[]
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
 * Tasks added at run time are journaled as `spawn` records and added again, first thing, on
 * resume: the same rules then decide which of them are reused.
 */
export class Journal implements RunRecorder {
  readonly reused = new Map<number, Reusable>()
  readonly approved = new Set<number>()
  /** Approval requests an earlier invocation decided (the journal names them): not applied again. */
  readonly decidedRequests: ReadonlySet<string>
  /** This invocation's number: 1 for a new run, one more than the earlier invocations' for a resumed one. */
  readonly invocation: number
  readonly file: string
  readonly #options: JournalOptions
  readonly #hashes!: string[]
  /** Module agents' file contents by URL, hashed once per run. */
  readonly #moduleDigests = new Map<string, string>()
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
  /** Sequence number of the last record queued (integrity.ts): the file's line count once flushed. */
  #seq = 0
  #flushing: Promise<void> | undefined
  #opening: Promise<void> | undefined
  /** The journal could not be opened: the run goes on without one. */
  #disabled = false
  #warned = false
  readonly #lock: RunLock
  readonly #previous: JournalContents | undefined
  /** The run's directory existed before this invocation took its lock: an earlier one may have left processes. */
  readonly #reopened: boolean

  /**
   * Takes the run id's lock and reads what an earlier run with this id left, synchronously,
   * so that `runtime.run()` refuses a locked id (`ERR_RUN_LOCKED`), an unreadable journal
   * (`ERR_JOURNAL_UNREADABLE`) or an input it cannot hash before it returns.
   */
  constructor(options: JournalOptions) {
    this.#options = options
    this.file = journalFile(options.dir, options.runId)
    ensureCheckpointDir(options.dir)
    this.#reopened = existsSync(runDir(options.dir, options.runId))
    this.#lock = RunLock.acquire(runDir(options.dir, options.runId), options.runId, options.now)
    try {
      this.#previous = readJournal(this.file)
      if (this.#previous?.legacy) {
        throw unreadable(this.file, undefined, 'it was written by an earlier troupe, without sequence numbers and checksums, so a damaged record could not be told from a good one (`troupe report` and `troupe runs` still read it)')
      }
      this.#seq = this.#previous?.lastSeq ?? 0
      // Summarized once: reuse, approvals, the log separators and the approval watcher all read this.
      const summary = this.#previous === undefined ? undefined : summarize(this.#previous.records)
      this.decidedRequests = summary?.decidedRequests ?? new Set()
      this.invocation = (summary?.invocations ?? 0) + 1
      if (this.#previous !== undefined) this.#addSpawned(this.#previous)
      this.#hashes = definitionHashes(options.plan, options.models, this.#moduleDigests)
      if (isStaged(options.strategy)) this.#countStages(options.plan.tasks)
      if (summary !== undefined) this.#findReusable(summary)
      if (summary !== undefined) this.#findApproved(summary)
    } catch (error) {
      this.#lock.release()
      throw error
    }
  }

  /** Each task's definition hash, by index: what resume compares, and the cache keys start from. */
  get definitionHashes(): readonly string[] {
    return this.#hashes
  }

  /**
   * Frees the run id and closes the file without a run-end record: for a journal whose run
   * never ends (it never started). A run that ends calls {@link runEnded}, which does both.
   */
  async release(): Promise<void> {
    await this.#flushing
    const handle = this.#handle
    this.#handle = undefined
    await handle?.close()
    this.#lock.release()
  }

  /**
   * Pipeline strategy: whether stage `stage` has ended and its records are on disk. True
   * when the journal cannot be written, so that a broken disk does not stall the run.
   */
  isStageDurable(stage: string): boolean {
    return this.#disabled || this.#broken || this.#durableStages.has(stage)
  }

  /**
   * Cuts a torn last line off and opens the journal for appending. Never rejects: when the
   * journal cannot be written, a warning is emitted and the run goes on without one (and
   * without reuse).
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
    const { runId, plan, strategy, maxParallel } = this.#options
    const previous = this.#previous
    // What an earlier, killed invocation of this run left running dies before anything runs again.
    // A new run id has no earlier invocation: skip the scan of every process (/proc) on its start-up path.
    if (this.#reopened) await stopLeftovers(runDir(this.#options.dir, runId))
    // Bytes, not decoded text: invalid UTF-8 before the cut must not move it.
    if (previous !== undefined && previous.validBytes < previous.size) await truncate(this.file, previous.validBytes)
    this.#handle = await open(this.file, 'a')
    const shape = plan.tasks.map((task) => ({
      id: task.id,
      agent: task.agent,
      dependsOn: task.deps.map((dep) => plan.tasks[dep]!.id),
      ...(task.description === undefined ? {} : { description: task.description }),
      ...(task.tags.length === 0 ? {} : { tags: task.tags }),
    }))
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
    // A reused task's record is already in the journal: append only what is new.
    if (result.reused) {
      // Its stage's end marker, when it was the stage's last task, must reach the disk: the next stage waits for it.
      if (this.#stageLeft.size > 0) this.#stageEnded(task, result)
      if (this.#pendingStages.length > 0) this.#flushSoon()
      return
    }
    // Built field by field (rest/spread of the result cost more than the JSON itself, per task),
    // and only with the fields the result has: an undefined field was written as a tagged
    // `{"$t":"undefined"}` (five per line), which also sent every record through the codec's
    // slow path. The reader sees an absent field and an undefined one alike.
    const record: { -readonly [K in keyof TaskRecord]: TaskRecord[K] } = {
      type: 'task',
      id: task.id,
      hash: this.#hashes[task.index]!,
      attempt: result.attempts,
      at: this.#options.now(),
      state: result.state,
    }
    if (result.startedAt !== undefined) record.startedAt = result.startedAt
    if (result.finishedAt !== undefined) record.finishedAt = result.finishedAt
    if (result.durationMs !== undefined) record.durationMs = result.durationMs
    if (result.output !== undefined) record.output = result.output
    if (result.error !== undefined) record.error = result.error
    if (result.reused !== undefined) record.reused = result.reused
    if (result.repairs !== undefined) record.repairs = result.repairs
    if (result.cached !== undefined) record.cached = result.cached
    let line: string
    try {
      // The other fields are strings, finite numbers and `true`: only these three can need the codec.
      const plain = absentOrPlain(record.output) && absentOrPlain(record.error) && absentOrPlain(record.repairs)
      line = plain ? JSON.stringify(record) : stringify(record)
    } catch {
      delete record.output
      record.outputUnavailable = true
      line = stringify(record)
    }
    this.#pending.push(`${seal(++this.#seq, line)}\n`)
    if (this.#stageLeft.size > 0) this.#stageEnded(task, result)
    this.#flushSoon()
  }

  tasksAdded(parent: string | undefined, tasks: readonly CompiledTask[]): void {
    // Hashes first (dependencies come before dependents in `tasks`), so their records can be written.
    for (const task of tasks) this.#hashes[task.index] = definitionHash(task, this.#hashes, this.#options.models, this.#moduleDigests)
    if (this.#stageLeft.size > 0) this.#countStages(tasks)
    if (this.#disabled) return
    this.#append({ type: 'spawn', ...(parent === undefined ? {} : { parent }), tasks: tasks.map((task) => task.spec), at: this.#options.now() })
  }

  approval(record: ApprovalRecord): void {
    if (this.#disabled) return
    this.#append({ type: 'approval', ...record })
  }

  async runEnded(result: RunResult): Promise<void> {
    try {
      await this.#opening
      if (this.#disabled) return
      this.#append({ type: 'run-end', status: result.status, totals: result.totals, at: this.#options.now() })
      await this.#flushing
      await this.#handle?.close()
      this.#handle = undefined
      // Every attempt has ended: the process ledger names nothing that can still run.
      await rm(join(runDir(this.#options.dir, this.#options.runId), PROCESSES_FILE), { force: true })
      // Indented for people to read; compact past a thousand tasks, where it is for programs.
      const text = resultText(result, result.totals.tasks > 1000 ? {} : { indent: 2 })
      await writeDurably(resultFile(this.#options.dir, this.#options.runId), `${text}\n`)
    } finally {
      this.#lock.release()
    }
  }

  /** Pipeline strategy: `tasks` are left to end in their stages. */
  #countStages(tasks: readonly CompiledTask[]): void {
    for (const task of tasks) this.#stageLeft.set(task.stage ?? '', (this.#stageLeft.get(task.stage ?? '') ?? 0) + 1)
  }

  /** Adds the tasks earlier runs with this id added, in the order they were added. */
  #addSpawned(previous: JournalContents): void {
    for (const record of previous.records) {
      if (record.type !== 'spawn') continue
      const by = record.parent === undefined ? 'Run.addTasks' : `task "${record.parent}"`
      try {
        this.#options.plan.add(record.tasks, { source: `${by} (as journaled in ${this.file})`, ...(record.parent === undefined ? {} : { parent: record.parent }) })
      } catch (error) {
        throw new TroupeError('ERR_JOURNAL_UNREADABLE', `Cannot resume run "${this.#options.runId}": the tasks ${by} added cannot be added again: ${(error as Error).message}`, { cause: error })
      }
    }
  }

  /** Approvals before start an earlier invocation journaled: its tasks are not held again (a merge is: its work is new). */
  #findApproved(summary: JournalSummary): void {
    const { plan } = this.#options
    // Each task's latest approval record decides (a later one overrides an earlier approval).
    for (const record of summary.approvals.values()) {
      const index = plan.byId.get(record.task)
      if (index === undefined || this.reused.has(index)) continue
      if (record.state === 'approved' && record.before === 'start') this.approved.add(index)
    }
  }

  #findReusable(summary: JournalSummary): void {
    const last = summary.tasks
    if (last.size === 0) return
    const { plan } = this.#options
    for (const index of plan.order) {
      const task = plan.tasks[index]!
      const record = last.get(task.id)
      if (record?.state !== 'COMPLETED' || record.outputUnavailable || record.hash !== this.#hashes[index]) continue
      if (!task.deps.every((dep) => this.reused.has(dep))) continue
      const repairs = record.repairs === undefined ? {} : { repairs: record.repairs }
      this.reused.set(index, { output: record.output, attempts: record.attempt, ...repairs })
    }
  }

  #stageEnded(task: CompiledTask, result: TaskResult): void {
    const stage = task.stage ?? ''
    if (result.state !== 'COMPLETED') this.#stageFailed.add(stage)
    const left = this.#stageLeft.get(stage)! - 1
    this.#stageLeft.set(stage, left)
    if (left === 0) {
      this.#pending.push(`${seal(++this.#seq, JSON.stringify({ type: 'stage', stage, completed: !this.#stageFailed.has(stage), at: this.#options.now() }))}\n`)
      this.#pendingStages.push(stage)
    }
  }

  #append(record: JournalRecord): void {
    this.#pending.push(`${seal(++this.#seq, stringify(record))}\n`)
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
 * changing a task also invalidates everything downstream of it. A hash covers everything that
 * defines the work: the id, the whole compiled agent definition (kind, module URL, command
 * `run`/`cwd`/`env`/`output`, CLI `args`/`bin`/model, LLM model/system/options…), a module
 * agent file's contents, the model from config, the task's workspace and its input (prompts
 * included). Execution settings (priority, timeout, retries, estimates, claims, limits) are
 * left out: they do not change what a task makes (regression: a changed command, template,
 * agent option or module file was "reused").
 */
export function definitionHashes(plan: RunPlan, models: Readonly<Record<string, string>>, digests: Map<string, string>): string[] {
  const hashes = new Array<string>(plan.tasks.length)
  for (const index of plan.order) hashes[index] = definitionHash(plan.tasks[index]!, hashes, models, digests)
  return hashes
}

/** Each compiled agent definition in canonical text, once (its tasks share the object). */
const agentTexts = new WeakMap<object, string>()

/** One task's definition hash, its dependencies' hashes being known. */
function definitionHash(
  task: CompiledTask,
  hashes: readonly string[],
  models: Readonly<Record<string, string>>,
  digests: Map<string, string>,
): string {
  const hash = createHash('sha256')
  let agent = agentTexts.get(task.agentSpec)
  if (agent === undefined) agentTexts.set(task.agentSpec, (agent = stringify(task.agentSpec, { canonical: true })))
  const file = task.agentSpec.kind === 'module' ? moduleDigest(task.agentSpec.moduleUrl, digests) : ''
  const workspace = (task.spec as { workspace?: unknown }).workspace ?? ''
  const model = models[task.agent] ?? ''
  hash.update(`v2\0${task.id}\0${task.agent}\0${agent}\0${file}\0${model}\0${String(workspace)}\0${canonicalInput(task)}`)
  // A task's own check and repair policy decide whether its work is accepted (absent: the v2 hash unchanged).
  const { check, repair } = task.spec
  if (check !== undefined || repair !== undefined) hash.update(`\0${stringify({ check, repair }, { canonical: true })}`)
  for (const dep of task.deps) hash.update(`\0${hashes[dep]}`)
  return hash.digest('base64url').slice(0, 22)
}

/** The contents of a module agent's file, hashed (once per URL); unreadable: a marker (the attempt fails to load it anyway). */
function moduleDigest(url: string, digests: Map<string, string>): string {
  let digest = digests.get(url)
  if (digest === undefined) {
    try {
      digest = createHash('sha256').update(readFileSync(url.startsWith('file:') ? fileURLToPath(url) : url)).digest('base64url')
    } catch {
      digest = 'unreadable'
    }
    digests.set(url, digest)
  }
  return digest
}

/** The task's input in the codec's canonical form: Map, Set, NaN, undefined… all count. */
function canonicalInput(task: CompiledTask): string {
  try {
    return stringify(task.input, { canonical: true })
  } catch (error) {
    throw new TroupeError('ERR_PLAN_INVALID', `Cannot hash the input of task "${task.id}" for the journal: ${(error as Error).message}`, { cause: error })
  }
}

/**
 * A RunResult as JSON text through the codec (result.json, `--json`). Never throws: an
 * output the codec cannot encode (nested past its depth bound) is left out of its task,
 * which says so in `outputUnavailable`.
 */
export function resultText(result: RunResult, options: { readonly indent?: number; readonly plain?: boolean } = {}): string {
  try {
    return stringify(result, options)
  } catch {
    const tasks: Record<string, unknown> = {}
    for (const [id, task] of Object.entries(result.tasks)) {
      try {
        stringify(task.output, options)
        tasks[id] = task
      } catch (error) {
        tasks[id] = { ...task, output: undefined, outputUnavailable: (error as Error).message }
      }
    }
    return stringify({ ...result, tasks }, options)
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
