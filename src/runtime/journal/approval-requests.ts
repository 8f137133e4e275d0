import { appendFileSync, closeSync, existsSync, openSync, readSync, statSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { EventEmitter } from 'node:events'
import type { ApprovalEvent, RunEvents } from '../report/events.ts'
import { reportListenerError } from '../report/events.ts'

/** The run's approval requests, one JSON object a line, appended by `troupe approve` and the dashboard. */
export const APPROVALS_FILE = 'approvals.jsonl'
/** How often a run holding a task for approval looks for new requests. */
export const APPROVAL_POLL_MS = 200
/** Longest request line read; a longer one is refused (a reason is cut to 2,000 characters before it is written). */
const MAX_LINE = 16_384

/** One decision asked for from outside the run's process. */
export interface ApprovalRequest {
  /** Unique per request: the journal names the request that decided, so a resumed run does not apply it twice. */
  readonly id: string
  readonly task: string
  readonly decision: 'approve' | 'reject'
  readonly reason?: string
  readonly by: 'cli' | 'dashboard'
  readonly at: number
}

/** Appends a request to the run directory's {@link APPROVALS_FILE} (one write of one line, O_APPEND). Returns it. */
export function appendApprovalRequest(runDirectory: string, request: Omit<ApprovalRequest, 'id' | 'at'>): ApprovalRequest {
  const full: ApprovalRequest = { id: randomUUID(), ...request, at: Date.now() }
  appendFileSync(join(runDirectory, APPROVALS_FILE), `${JSON.stringify(full)}\n`, { mode: 0o600 })
  return full
}

/** A request line as written, or undefined when it is not one (hostile or damaged lines are skipped). */
export function parseApprovalRequest(line: string): ApprovalRequest | undefined {
  if (line.length > MAX_LINE) return undefined
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const r = value as Record<string, unknown>
  if (typeof r.id !== 'string' || r.id === '' || typeof r.task !== 'string' || r.task === '') return undefined
  if (r.decision !== 'approve' && r.decision !== 'reject') return undefined
  if (r.by !== 'cli' && r.by !== 'dashboard') return undefined
  if (r.reason !== undefined && typeof r.reason !== 'string') return undefined
  const at = typeof r.at === 'number' && Number.isFinite(r.at) ? r.at : 0
  return { id: r.id, task: r.task, decision: r.decision, by: r.by, at, ...(typeof r.reason === 'string' ? { reason: r.reason } : {}) }
}

/** What the watcher needs of a run. */
export interface ApprovableRun extends EventEmitter<RunEvents> {
  readonly result: Promise<unknown>
  awaitingApproval(): readonly { readonly taskId: string; readonly before: 'start' | 'merge'; readonly since: number }[]
  decide(request: ApprovalRequest): void
}

/**
 * Applies the requests of a run's {@link APPROVALS_FILE} — the channel that reaches a run from
 * another process (`troupe approve`), without the dashboard. From the first time one of its
 * tasks awaits approval until the run ends, the run reads what was appended since it last
 * looked (every {@link APPROVAL_POLL_MS}, and at once when a task starts waiting); a request
 * for a task awaiting approval decides it (and is journaled with its id), one for a task not
 * awaiting yet waits for it (an approval before start given while the run was killed applies
 * once the resumed run reaches the gate again; one older than a merge's wait is dropped: it
 * was for work the resumed run redid). Requests the journal names as decided are skipped.
 */
export class ApprovalRequests {
  readonly #run: ApprovableRun
  readonly #file: string
  #offset = 0
  #partial = ''
  #pending: ApprovalRequest[] = []
  /** Requests already decided: by an earlier invocation (the journal names them), or read here. */
  readonly #decided: Set<string>
  #timer: NodeJS.Timeout | undefined
  #ended = false

  private constructor(run: ApprovableRun, runDirectory: string, decided: ReadonlySet<string>) {
    this.#run = run
    this.#file = join(runDirectory, APPROVALS_FILE)
    this.#decided = new Set(decided)
  }

  /**
   * Watches `runDirectory`'s requests for `run` once one of its tasks awaits approval; stops when
   * the run ends. `decided`: the requests the journal names as decided (Journal.decidedRequests).
   */
  static attach(run: ApprovableRun, runDirectory: string, decided: ReadonlySet<string>): ApprovalRequests {
    const requests = new ApprovalRequests(run, runDirectory, decided)
    run.on('task:approval', (event) => requests.#onApproval(event))
    void run.result.then(() => requests.#stop())
    return requests
  }

  #onApproval(event: ApprovalEvent): void {
    if (event.state !== 'awaiting' || this.#ended) return
    if (this.#timer === undefined) {
      // Not unref'd: a run waiting for a person keeps its process alive (cleared when the run ends).
      this.#timer = setInterval(() => this.#poll(), APPROVAL_POLL_MS)
    }
    // After the run's own handling of this transition.
    queueMicrotask(() => this.#poll())
  }

  #stop(): void {
    this.#ended = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  #poll(): void {
    if (this.#ended) return
    try {
      this.#read()
    } catch (error) {
      reportListenerError(new Error(`approval requests ${this.#file}: ${(error as Error).message}`, { cause: error }))
    }
    if (this.#pending.length === 0) return
    const awaiting = new Map(this.#run.awaitingApproval().map((a) => [a.taskId, a]))
    const left: ApprovalRequest[] = []
    for (const request of this.#pending) {
      const held = awaiting.get(request.task)
      if (held === undefined) {
        left.push(request)
        continue
      }
      // A merge is approved for the work a person saw: a request older than this wait (made
      // before a kill, for work the resumed run redid) does not approve the new work.
      if (held.before === 'merge' && request.at < held.since) continue
      awaiting.delete(request.task)
      try {
        this.#run.decide(request)
      } catch (error) {
        reportListenerError(error)
      }
    }
    this.#pending = left
  }

  /** Reads the lines appended since the last read. */
  #read(): void {
    if (!existsSync(this.#file)) return
    const size = statSync(this.#file).size
    if (size <= this.#offset) return
    const fd = openSync(this.#file, 'r')
    try {
      const buffer = Buffer.alloc(size - this.#offset)
      const read = readSync(fd, buffer, 0, buffer.length, this.#offset)
      this.#offset += read
      const text = this.#partial + buffer.subarray(0, read).toString('utf8')
      const lines = text.split('\n')
      this.#partial = lines.pop() ?? ''
      for (const line of lines) {
        const request = parseApprovalRequest(line)
        if (request !== undefined && !this.#decided.has(request.id)) {
          this.#decided.add(request.id)
          this.#pending.push(request)
        }
      }
    } finally {
      closeSync(fd)
    }
  }

}
