import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { MAILBOX_FILE, type Message, parseMessages } from '../runtime/coordination/mailbox.ts'
import { REPAIR_REASONS, type RepairReason, type RepairRecord } from '../runtime/plan/repair-spec.ts'
import type { ApprovalEvent } from '../runtime/report/events.ts'

/** Most of a repair's detail a view shows: its tail (what failed last), in characters. */
export const MAX_REPAIR_DETAIL_CHARS = 2_000
/** Messages a view shows: the run's newest, newest last (`troupe logs --messages` has them all). */
export const MAX_SHOWN_MESSAGES = 100
/** Most of one message's text a view shows (its head), in characters. */
export const MAX_SHOWN_MESSAGE_CHARS = 1_000
/** Most of a task id a view shows, in characters (a mailbox file may hold anything). */
const MAX_ID_CHARS = 256
/** Bytes of a mailbox file read for a view: its end, enough for MAX_SHOWN_MESSAGES long messages. */
export const MAX_MESSAGES_READ_BYTES = 2 * 1024 * 1024

/** One repair of a task, as the dashboard and the report show it. */
export interface RepairView {
  /** 1-based, over all the task's repairs. */
  readonly number: number
  readonly attempt: number
  readonly reason: RepairReason
  /** The detail's tail, sanitised ({@link visibleText}). */
  readonly detail: string
}

/** Most of an approval's reason a view shows, in characters (the run already cuts it to 2,000). */
const MAX_REASON_CHARS = 2_000

/** A task's approval gate, its latest state, as the dashboard and the report show it. */
export interface ApprovalView {
  readonly state: ApprovalEvent['state']
  readonly before: ApprovalEvent['before']
  /** Who decided: `library`, `cli`, `dashboard` or `journal` (absent while awaiting). */
  readonly by?: string
  /** A rejection's reason, sanitised. */
  readonly reason?: string
  readonly at: number
}

/** An approval event or journal record as shown: the reason sanitised and bounded, nothing else kept. */
export function approvalView(
  e: Pick<ApprovalEvent, 'state' | 'before' | 'at'> & { readonly by?: string; readonly reason?: string },
): ApprovalView {
  return {
    state: e.state,
    before: e.before,
    ...(e.by === undefined ? {} : { by: visibleText(e.by, 32) }),
    ...(e.reason === undefined || e.reason === '' ? {} : { reason: visibleText(e.reason, MAX_REASON_CHARS) }),
    at: e.at,
  }
}

/** One message between tasks, as the dashboard and the report show it. */
export interface MessageView {
  readonly from: string
  readonly to: string
  readonly at: number
  /** The text's head, sanitised ({@link visibleText}). */
  readonly text: string
}

/** The newest messages of a run, and whether older ones were left out. */
export interface MessagesView {
  readonly messages: readonly MessageView[]
  /** Messages of the run left out (older ones), or true when the file was read from its end only. */
  readonly omitted: number | true
}

// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g

/**
 * Agent-made text for a page: controls other than newline and tab (escape sequences, bidi overrides,
 * zero-width marks) shown as `�`, and at most `max` characters — the head (`keep: 'head'`) or the tail.
 * The page inserts it as text, never markup; this keeps it readable and bounded.
 */
export function visibleText(text: unknown, max: number, keep: 'head' | 'tail' = 'head'): string {
  const visible = String(text).replace(INVISIBLE, '�')
  if (visible.length <= max) return visible
  // Cut to exactly `max` with the ellipsis, so shaping shaped text again changes nothing.
  return keep === 'head' ? `${visible.slice(0, max - 1)}…` : `…${visible.slice(-(max - 1))}`
}

/** A task's repairs (`RunResult.tasks[id].repairs`) as shown: numbered, each detail's tail sanitised; undefined when none. */
export function repairViews(records: readonly RepairRecord[] | undefined): RepairView[] | undefined {
  if (records === undefined || !Array.isArray(records) || records.length === 0) return undefined
  return records.map((r, i) => ({
    number: i + 1,
    attempt: Number.isSafeInteger(r.attempt) ? r.attempt : 0,
    reason: REPAIR_REASONS.find((known) => known === r.reason) ?? 'verify',
    detail: visibleText(typeof r.detail === 'string' ? r.detail : '', MAX_REPAIR_DETAIL_CHARS, 'tail'),
  }))
}

/**
 * A run's messages (oldest first) as shown: the newest MAX_SHOWN_MESSAGES, newest last, each sanitised and bounded.
 * `earlier` counts messages already left out before these (true: an unknown number).
 */
export function messageViews(messages: readonly Pick<Message, 'from' | 'to' | 'at' | 'text'>[], earlier: number | true = 0): MessagesView {
  const list = Array.isArray(messages) ? messages : []
  const shown = list.slice(-MAX_SHOWN_MESSAGES)
  const omitted = earlier === true ? true : earlier + list.length - shown.length
  return {
    messages: shown.map((m) => ({
      from: visibleText(m.from, MAX_ID_CHARS),
      to: visibleText(m.to, MAX_ID_CHARS),
      at: Number.isFinite(m.at) ? m.at : 0,
      text: visibleText(m.text, MAX_SHOWN_MESSAGE_CHARS),
    })),
    omitted,
  }
}

/**
 * The messages of the run in `dir` (`<runDir>/messages.jsonl`), shaped by {@link messageViews}. Reads at most
 * MAX_MESSAGES_READ_BYTES from the file's end (a run may hold 10,000 messages of 8,000 characters); no file, no messages.
 */
export function readRunMessages(dir: string): MessagesView {
  let fd: number
  try {
    fd = openSync(join(dir, MAILBOX_FILE), 'r')
  } catch {
    return { messages: [], omitted: 0 }
  }
  try {
    const size = fstatSync(fd).size
    const length = Math.min(size, MAX_MESSAGES_READ_BYTES)
    const buffer = Buffer.alloc(length)
    const read = readSync(fd, buffer, 0, length, size - length)
    let text = buffer.subarray(0, read).toString('utf8')
    // Read from the middle of the file: its first line is a fragment.
    if (length < size) text = text.slice(text.indexOf('\n') + 1)
    const messages = parseMessages(text)
    return messageViews(messages, length < size ? true : 0)
  } finally {
    closeSync(fd)
  }
}
