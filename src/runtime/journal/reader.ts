import { readFileSync } from 'node:fs'
import { TroupeError } from '../core/errors.ts'
import { decode } from './codec.ts'
import { isUnsealed, unseal } from './integrity.ts'
import type { JournalRecord } from './records.ts'

/** A journal as read from disk: its records, and how many bytes of it are whole lines. */
export interface JournalContents {
  readonly file: string
  readonly records: readonly JournalRecord[]
  /** Bytes up to the end of the last complete line; anything after is a torn write. */
  readonly validBytes: number
  /** Size of the file: more than {@link validBytes} when the last line is torn. */
  readonly size: number
  /** The sequence number of the last whole record (0 for a legacy journal): the next one written is `lastSeq + 1`. */
  readonly lastSeq: number
  /**
   * Written by a troupe before records were sealed (no `seq`, no `crc` on any line). It can
   * be read (`troupe report`, `runs`, `logs`) but a run never resumes from it.
   */
  readonly legacy: boolean
}

const NEWLINE = 0x0a

/**
 * Reads the journal `file` (the one reader of the format: resume, `troupe report`, `runs`
 * and `logs` all use it). Returns `undefined` when there is none (or it is empty).
 *
 * Works on bytes: only a last line without its newline (a write torn by a crash) is
 * ignored. Anything else that is not a journal record — invalid UTF-8, a line whose
 * checksum does not match (edited), a sequence number out of order (a line deleted,
 * repeated or moved), broken JSON, a first record that is not `run-start` — throws
 * `ERR_JOURNAL_UNREADABLE` naming the file and the line, because resuming from a journal
 * half understood would silently re-run (or skip) work. See integrity.ts for the seal.
 */
export function readJournal(file: string): JournalContents | undefined {
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw unreadable(file, undefined, (error as Error).message, error)
  }
  const validBytes = bytes.lastIndexOf(NEWLINE) + 1
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const records: JournalRecord[] = []
  let start = 0
  let line = 0
  let legacy: boolean | undefined
  while (start < validBytes) {
    const end = bytes.indexOf(NEWLINE, start)
    line++
    const slice = bytes.subarray(start, end)
    start = end + 1
    let text: string
    try {
      text = decoder.decode(slice)
    } catch (error) {
      throw unreadable(file, line, 'it is not valid UTF-8', error)
    }
    if (text.trim() === '') throw unreadable(file, line, 'the line is empty')
    // The first line decides: sealed (every line must be), or a legacy journal (no line may be).
    legacy ??= isUnsealed(text)
    if (legacy) {
      if (!isUnsealed(text)) throw unreadable(file, line, 'a sealed record in a journal whose first line has no checksum')
    } else {
      const seal = unseal(text)
      if ('problem' in seal) throw unreadable(file, line, seal.problem)
      if (seal.seq !== line) {
        const why = seal.seq < line ? 'repeated or moved' : 'deleted or moved'
        throw unreadable(file, line, `its sequence number is ${seal.seq}, not ${line}: a record before it was ${why}`)
      }
    }
    let record: JournalRecord
    try {
      const tree = JSON.parse(text) as Record<string, unknown>
      if (!legacy) {
        delete tree.seq
        delete tree.crc
      }
      record = decode(tree) as JournalRecord
    } catch (error) {
      throw unreadable(file, line, `it is not a journal record (${(error as Error).message})`, error)
    }
    const type = (record as { type?: unknown } | null)?.type
    // Record types this reader does not know (added by later versions) are kept, not refused.
    if (typeof type !== 'string' || type === '') throw unreadable(file, line, 'a record without a type')
    if (records.length === 0 && type !== 'run-start') throw unreadable(file, line, `the first record is "${type}", not "run-start"`)
    if (type === 'task' && typeof (record as { id?: unknown }).id !== 'string') throw unreadable(file, line, 'a task record without an id')
    records.push(record)
  }
  // A torn write is the start of a record: `{…` without its newline. Zeros or other bytes
  // there are damage (a file overwritten or a disk block lost), not a crash mid-append.
  const torn = bytes.subarray(validBytes)
  if (torn.length > 0 && (torn[0] !== 0x7b || torn.includes(0))) throw unreadable(file, line + 1, 'the last line is neither a whole record nor the start of one')
  if (records.length === 0 && validBytes === bytes.length) return undefined
  return { file, records, validBytes, size: bytes.length, lastSeq: legacy === true ? 0 : records.length, legacy: legacy === true }
}

export function unreadable(file: string, line: number | undefined, why: string, cause?: unknown): TroupeError {
  return new TroupeError(
    'ERR_JOURNAL_UNREADABLE',
    `Cannot resume from the journal ${file}${line === undefined ? '' : ` (line ${line})`}: ${why}. Move the file away (or delete the run's directory) to start the run afresh, or use another --run-id.`,
    cause === undefined ? undefined : { cause },
  )
}

type TaskRecord = Extract<JournalRecord, { type: 'task' }>
type RunStart = Extract<JournalRecord, { type: 'run-start' }>
type RunEnd = Extract<JournalRecord, { type: 'run-end' }>
export type ApprovalJournalRecord = Extract<JournalRecord, { type: 'approval' }>

/** What the records say about a run, for resume and the CLI. */
export interface JournalSummary {
  /** The first and the latest `run-start` (a resumed run has one per invocation). */
  readonly firstStart: RunStart | undefined
  readonly lastStart: RunStart | undefined
  /** The `run-end` after the latest `run-start`; absent when that invocation was killed or is running. */
  readonly lastEnd: RunEnd | undefined
  /** Each task's latest record, by task id. */
  readonly tasks: ReadonlyMap<string, TaskRecord>
  /** How many runs with this id were started (first run and resumes). */
  readonly invocations: number
  /** Tasks added at run time since the latest `run-start` (earlier additions are in its count). */
  readonly addedSinceStart: number
  /** Each task's latest approval record (docs/plans.md#approval-gates), by task id. */
  readonly approvals: ReadonlyMap<string, ApprovalJournalRecord>
  /** Approval requests (`troupe approve`, the dashboard) already decided, by request id. */
  readonly decidedRequests: ReadonlySet<string>
  /** Tasks whose latest approval record says awaiting and that have not ended since, in the order they started waiting. */
  readonly awaiting: ReadonlySet<string>
}

export function summarize(records: readonly JournalRecord[]): JournalSummary {
  let firstStart: RunStart | undefined
  let lastStart: RunStart | undefined
  let lastEnd: RunEnd | undefined
  let invocations = 0
  let added = 0
  const tasks = new Map<string, TaskRecord>()
  const approvals = new Map<string, ApprovalJournalRecord>()
  const decidedRequests = new Set<string>()
  const awaiting = new Set<string>()
  for (const record of records) {
    if (record.type === 'run-start') {
      firstStart ??= record
      lastStart = record
      lastEnd = undefined
      invocations++
      added = 0
    } else if (record.type === 'run-end') lastEnd = record
    else if (record.type === 'task') {
      tasks.set(record.id, record)
      awaiting.delete(record.id)
    } else if (record.type === 'spawn') added += record.tasks.length
    else if (record.type === 'approval') {
      approvals.set(record.task, record)
      if (record.request !== undefined) decidedRequests.add(record.request)
      if (record.state === 'awaiting') awaiting.add(record.task)
      else awaiting.delete(record.task)
    }
  }
  return { firstStart, lastStart, lastEnd, tasks, invocations, addedSinceStart: added, approvals, decidedRequests, awaiting }
}
