import type { ClaimResult } from '../../admission/gate.ts'
import type { InboxPage, Message } from '../../coordination/mailbox.ts'
import { MAX_PAGE_NOTES, type Note, type NotePage } from '../../coordination/scratchpad.ts'
import { TroupeError } from '../../core/errors.ts'
import type { AttemptListener, WaitTasksAnswer } from '../executor.ts'
import { MAX_SERVICE_CALL_CHARS, MAX_SERVICE_TEXT_CHARS, type ServiceRequest } from './protocol.ts'

/** Sends one service call of the attempt; resolves with the coordinator's value, rejects with its error. */
export type ServiceSender = (what: string, request: ServiceRequest) => Promise<unknown>

/** The `ctx` services of an attempt on a worker, each a call to the coordinator. */
export type RemoteServices = Required<Pick<AttemptListener, 'onAcquire' | 'onClaim' | 'onRelease' | 'scratchpad' | 'mailbox' | 'onWaitTasks'>>

/**
 * The `ctx` services of an attempt on a remote worker: scratchpad, messages, named limits
 * and claims are the run's, kept by the coordinator; every call goes there (`send`) and is
 * answered by the run's listener of this attempt, with the codes a local attempt gets. The
 * task a note, a message or a claim is the coordinator's to say (the attempt's), never the
 * worker's. A call larger than MAX_SERVICE_CALL_CHARS is refused here (ERR_ARGUMENT_INVALID).
 */
export function remoteServices(send: ServiceSender): RemoteServices {
  const call = (what: string, request: ServiceRequest): Promise<unknown> => {
    const size = JSON.stringify(request).length
    if (size > MAX_SERVICE_CALL_CHARS) {
      const message = `${what}: the call is ${size} characters long; at most ${MAX_SERVICE_CALL_CHARS} go to the coordinator`
      return Promise.reject(new TroupeError('ERR_ARGUMENT_INVALID', message))
    }
    return send(what, request)
  }
  const scratchpad = {
    async read(): Promise<readonly Note[]> {
      // Page by page: one answer stays bounded however large the pad is.
      const notes: Note[] = []
      for (let since: number | undefined = 0; since !== undefined; ) {
        const page: NotePage = await this.page(since, MAX_PAGE_NOTES)
        notes.push(...page.notes)
        since = page.next !== undefined && page.next > since ? page.next : undefined
      }
      return notes
    },
    page: (since: number, limit: number) => call('scratchpad_read', { op: 'scratchpad.page', since, limit }) as Promise<NotePage>,
    append: (_taskId: string, text: string) =>
      // A note is cut at MAX_NOTE_CHARS by the run anyway: what goes over the wire is bounded the same way.
      call('ctx.scratchpad.append', {
        op: 'scratchpad.append',
        text: typeof text === 'string' ? text.slice(0, MAX_SERVICE_TEXT_CHARS) : text,
      }) as Promise<Note>,
  }
  const mailbox = {
    send: (_from: string, to: string, text: string) => call('send_message', { op: 'messages.send', to, text }) as Promise<Message>,
    inbox: (_to: string, since = 0, limit?: number) =>
      call('read_messages', { op: 'messages.inbox', since, ...(limit === undefined ? {} : { limit }) }) as Promise<InboxPage>,
  }
  return {
    async onAcquire(name, signal) {
      const what = `ctx.acquire(${JSON.stringify(String(name)).slice(0, 80)})`
      const lease = await call(what, { op: 'acquire', name })
      let released = false
      const release = () => {
        if (released) return
        released = true
        void call(`${what} release`, { op: 'release-lease', lease: lease as number }).catch(() => undefined)
      }
      // The attempt ended while the unit was granted: the coordinator gives back what the attempt held.
      if (signal.aborted) release()
      return release
    },
    onClaim: (path) => call(`ctx.claim(${JSON.stringify(String(path)).slice(0, 80)})`, { op: 'claim', path }) as Promise<ClaimResult>,
    onRelease: (path) => void call('ctx.release', { op: 'release', path }).catch(() => undefined),
    scratchpad: () => scratchpad,
    mailbox: () => mailbox,
    // Never rejects, as the listener's: a failed call is an answer.
    onWaitTasks: (request) =>
      (call('wait_tasks', { op: 'wait-tasks', ...request }) as Promise<WaitTasksAnswer>).catch((error: TroupeError) => ({
        ok: false as const,
        error: { code: error.code ?? 'ERR_TASK_FAILED', message: error.message },
      })),
  }
}
