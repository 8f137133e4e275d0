import { TroupeError } from '../core/errors.ts'
import { JsonlLog, parseJsonl, readJsonl } from './jsonl-log.ts'
import { cleanText } from './tool-output.ts'

/** One message between two tasks of a run. */
export interface Message {
  /** Position in the run's mailbox (0 = the first message sent in the run). */
  readonly seq: number
  readonly from: string
  readonly to: string
  /** Epoch ms. */
  readonly at: number
  readonly text: string
}

/** Longest message, in characters: a longer one is refused (ERR_ARGUMENT_INVALID), never cut. */
export const MAX_MESSAGE_CHARS = 8_000
/** Messages one run may hold; past it `send` fails with ERR_MAILBOX_FULL. */
export const MAX_RUN_MESSAGES = 10_000
/** Messages one task's inbox may hold; past it `send` to that task fails with ERR_MAILBOX_FULL. */
export const MAX_INBOX_MESSAGES = 1_000
/** Most messages one `read_messages` page holds (its `limit`). */
export const MAX_PAGE_MESSAGES = 100
/** Longest task id a message may name. */
export const MAX_TASK_ID_CHARS = 256

/** Name of a run's mailbox file in its run directory. */
export const MAILBOX_FILE = 'messages.jsonl'

/** One page of an inbox: `next` is the `since` of the following page, absent at the end. */
export interface InboxPage {
  readonly messages: readonly Message[]
  /** Messages in the inbox now. */
  readonly total: number
  readonly next?: number
}

export interface MailboxOptions {
  /** Whether the run has a task with this id (a message to anything else is refused). */
  readonly isTask: (id: string) => boolean
  /** Told of each message once it is stored (the run's `task:message` event). */
  readonly onMessage?: (message: Message) => void
}

/**
 * A run's messages between tasks (`send_message` / `read_messages`): each addressed by task id
 * to one task, read by that task only from its own inbox. Kept like the scratchpad, in
 * `<runDir>/messages.jsonl`, one message per line, appended before `send` resolves, so a
 * resumed run (or a retried attempt) finds every message sent before; in memory without a
 * journal. Bounded: MAX_RUN_MESSAGES per run, MAX_INBOX_MESSAGES per inbox (ERR_MAILBOX_FULL),
 * MAX_MESSAGE_CHARS per message (ERR_ARGUMENT_INVALID). Escape sequences and control
 * characters (but tab and newline) are removed before a message is stored.
 */
export class Mailbox {
  readonly file: string | undefined
  readonly #all: Message[]
  readonly #inboxes = new Map<string, Message[]>()
  readonly #options: MailboxOptions
  readonly #log: JsonlLog

  private constructor(file: string | undefined, messages: Message[], options: MailboxOptions) {
    this.file = file
    this.#log = new JsonlLog(file)
    this.#all = messages
    this.#options = options
    for (const message of messages) this.#inbox(message.to).push(message)
  }

  /** Opens a run's mailbox, restoring what a previous process of the run stored. */
  static async open(file: string | undefined, options: MailboxOptions): Promise<Mailbox> {
    if (file === undefined) return new Mailbox(undefined, [], options)
    return new Mailbox(file, numbered(await readJsonl(file, parseMessage)), options)
  }

  /** Messages of the run, oldest first. */
  get size(): number {
    return this.#all.length
  }

  /** Sends `text` from task `from` to task `to`; resolves once it is on disk. */
  async send(from: string, to: string, text: string, at = Date.now()): Promise<Message> {
    if (typeof to !== 'string' || !this.#options.isTask(to)) {
      throw new TroupeError('ERR_ARGUMENT_INVALID', `send_message: \`to\` must be the id of a task of this run, got ${JSON.stringify(String(to)).slice(0, 80)}`)
    }
    // Stored clean: the text reaches another agent's model, a terminal (troupe logs) and maybe a page.
    const clean = typeof text === 'string' ? cleanText(text) : text
    if (typeof clean !== 'string' || clean.trim() === '' || clean.length > MAX_MESSAGE_CHARS) {
      const got = typeof clean === 'string' ? `${clean.length} characters${clean.trim() === '' ? ' of blank or control characters' : ''}` : typeof clean
      throw new TroupeError('ERR_ARGUMENT_INVALID', `send_message: \`text\` must be a non-empty string of at most ${MAX_MESSAGE_CHARS} characters, got ${got}`)
    }
    if (this.#all.length >= MAX_RUN_MESSAGES) throw new TroupeError('ERR_MAILBOX_FULL', `send_message: the run holds ${MAX_RUN_MESSAGES} messages, the most it may`)
    const inbox = this.#inbox(to)
    if (inbox.length >= MAX_INBOX_MESSAGES) {
      throw new TroupeError('ERR_MAILBOX_FULL', `send_message: the inbox of task "${to}" holds ${MAX_INBOX_MESSAGES} messages, the most it may`)
    }
    const message: Message = { seq: this.#all.length, from, to, at, text: clean }
    this.#all.push(message)
    inbox.push(message)
    await this.#log.append(message)
    this.#options.onMessage?.(message)
    return message
  }

  /** The inbox of task `to` from position `since` (0 = its first message), at most `limit` messages. */
  inbox(to: string, since = 0, limit = MAX_PAGE_MESSAGES): InboxPage {
    const inbox = this.#inboxes.get(to) ?? []
    const from = Math.max(0, since)
    const messages = inbox.slice(from, from + Math.max(1, limit))
    const end = from + messages.length
    return { messages, total: inbox.length, ...(end < inbox.length ? { next: end } : {}) }
  }

  #inbox(to: string): Message[] {
    let inbox = this.#inboxes.get(to)
    if (inbox === undefined) this.#inboxes.set(to, (inbox = []))
    return inbox
  }
}

/** The messages of a `messages.jsonl` text (for readers such as `troupe logs --messages`). */
export function parseMessages(text: string): Message[] {
  return numbered(parseJsonl(text, parseMessage))
}

/** Renumbered on read: a dropped line leaves no gap in the positions. */
function numbered(messages: Message[]): Message[] {
  return messages.map((message, seq) => ({ ...message, seq }))
}

function parseMessage(parsed: unknown): Message | undefined {
  const value = parsed as Partial<Message>
  if (typeof value.from === 'string' && typeof value.to === 'string' && typeof value.at === 'number' && typeof value.text === 'string') {
    return { seq: 0, from: value.from, to: value.to, at: value.at, text: value.text }
  }
  return undefined
}
