import type { ClaimResult } from '../admission/gate.ts'
import type { ErrorCode } from '../core/errors.ts'
import type { MailboxAccess, ScratchpadAccess, WaitTasksAnswer, WaitTasksRequest } from '../execution/executor.ts'
import type { InboxPage, Message } from './mailbox.ts'
import type { Note, NotePage } from './scratchpad.ts'
import { MAX_ANSWER_CHARS, MAX_OUTPUT_CHARS, outputText } from './tool-output.ts'

/**
 * What one attempt of one task may do to its run through tools (MCP for CLI agents, `ctx`
 * for module agents): the same claim registry, scratchpad, progress and log, and the
 * run's task graph. Bound to the attempt; revoked when it ends.
 */
export interface ToolBinding {
  readonly runId: string
  readonly taskId: string
  claim(path: string): ClaimResult | Promise<ClaimResult>
  release(path: string): void
  progress(fraction: number, message: string | undefined): void
  log(message: string): void
  readonly scratchpad: ScratchpadAccess
  /** Adds tasks to the running DAG (validated like plan tasks; rejects with `CODE: message`, adding nothing); undefined where the run cannot grow. */
  addTasks?(tasks: readonly unknown[]): Promise<{ readonly added: readonly string[] }>
  /** Waits for tasks (`wait_tasks`), or adds then waits (`add_tasks` with `wait`); ends early when the attempt is stopped. Undefined where the run cannot. */
  waitTasks?(request: WaitTasksRequest): Promise<WaitTasksAnswer>
  /** Aborts when the attempt is stopped (cancelled, timed out): a wait in progress then answers ERR_CANCELLED at once. */
  readonly stopped?: AbortSignal
  /** The run's messages between tasks; undefined where the run has none. */
  readonly mailbox?: MailboxAccess
}

/** One waited-for task in a tool's answer: its output as bounded, sanitised text. */
export interface WaitedTaskView {
  readonly state: string
  readonly output?: string
  readonly error?: { readonly code: ErrorCode; readonly message: string }
}

/** What `wait_tasks` (and `add_tasks` with `wait`) answer. */
export interface WaitView {
  readonly added?: readonly string[]
  /** True when the timeout ran out first: the tasks not ended yet are listed with their state now. */
  readonly timedOut: boolean
  readonly tasks: Readonly<Record<string, WaitedTaskView>>
}

/** Most task ids one wait_tasks call waits for. */
export const MAX_WAIT_IDS = 100
/** Longest wait of one wait_tasks (or add_tasks with wait) call, in seconds; also its default. */
export const MAX_WAIT_SECONDS = 3_600

/** Notes `scratchpad_read` returns when no `limit` is given. */
export const DEFAULT_PAGE_NOTES = 100

/** The tools, as plain functions over a binding (the MCP server and tests call these). */
export const runTools = {
  /** Claims every path or none: refused with the holder when another running task holds an overlapping claim. */
  async claimFiles(binding: ToolBinding, paths: readonly string[]): Promise<{ granted: boolean; holder?: string; path?: string }> {
    const taken: string[] = []
    for (const path of paths) {
      const result = await binding.claim(path)
      if (!result.granted) {
        for (const back of taken) binding.release(back)
        return { granted: false, path, ...(result.holder === undefined ? {} : { holder: result.holder }) }
      }
      taken.push(path)
    }
    return { granted: true }
  },

  releaseFiles(binding: ToolBinding, paths: readonly string[]): { released: number } {
    for (const path of paths) binding.release(path)
    return { released: paths.length }
  },

  reportProgress(binding: ToolBinding, fraction: number, message: string | undefined): { ok: true } {
    binding.progress(Math.min(1, Math.max(0, fraction)), message)
    return { ok: true }
  },

  log(binding: ToolBinding, message: string): { ok: true } {
    binding.log(message)
    return { ok: true }
  },

  /** One page of notes from position `since`: at most `limit` notes and MAX_PAGE_CHARS of text; `next` continues. */
  scratchpadRead(binding: ToolBinding, since = 0, limit = DEFAULT_PAGE_NOTES): NotePage | Promise<NotePage> {
    return binding.scratchpad.page(since, limit)
  },

  async scratchpadAppend(binding: ToolBinding, text: string): Promise<{ note: Note }> {
    return { note: await binding.scratchpad.append(binding.taskId, text) }
  },

  /** Adds tasks; with `wait`, then waits for them like `wait_tasks` (`timeout` in seconds). */
  async addTasks(binding: ToolBinding, tasks: readonly unknown[], wait = false, timeout?: number): Promise<{ added: readonly string[] } | WaitView> {
    if (wait) return waitView(await waitFor(binding, 'add_tasks', { add: tasks, timeoutMs: timeoutMs(timeout) }))
    if (binding.addTasks === undefined) throw new Error('add_tasks: this run cannot add tasks')
    return binding.addTasks(tasks)
  },

  /** Waits until the tasks `ids` (added by this task or their descendants) have all ended, or `timeout` seconds ran out. */
  async waitTasks(binding: ToolBinding, ids: readonly string[], timeout?: number): Promise<WaitView> {
    return waitView(await waitFor(binding, 'wait_tasks', { ids, timeoutMs: timeoutMs(timeout) }))
  },

  /** Sends a message to the task `to` of this run. */
  async sendMessage(binding: ToolBinding, to: string, text: string): Promise<{ message: Message }> {
    if (binding.mailbox === undefined) throw new Error('send_message: this run has no mailbox')
    return { message: await binding.mailbox.send(binding.taskId, to, text) }
  },

  /** One page of this task's own inbox from position `since`. */
  readMessages(binding: ToolBinding, since?: number, limit?: number): InboxPage | Promise<InboxPage> {
    if (binding.mailbox === undefined) throw new Error('read_messages: this run has no mailbox')
    return binding.mailbox.inbox(binding.taskId, since, limit)
  },
}

function timeoutMs(seconds: number | undefined): number {
  return Math.round(Math.min(MAX_WAIT_SECONDS, Math.max(1, seconds ?? MAX_WAIT_SECONDS)) * 1000)
}

async function waitFor(binding: ToolBinding, tool: string, request: WaitTasksRequest): Promise<Extract<WaitTasksAnswer, { ok: true }>> {
  if (binding.waitTasks === undefined) throw new Error(`${tool}: this run cannot wait for tasks from this attempt`)
  const answer = await untilStopped(() => binding.waitTasks!(request), binding)
  // `CODE: message`, as add_tasks reports a refused addition.
  if (!answer.ok) throw new Error(`${answer.error.code}: ${answer.error.message}`)
  return answer
}

/** The answer as the agent sees it: each output as text, sanitised, within MAX_ANSWER_CHARS together. */
function waitView(answer: Extract<WaitTasksAnswer, { ok: true }>): WaitView {
  const entries = Object.entries(answer.tasks)
  const share = Math.max(256, Math.min(MAX_OUTPUT_CHARS, Math.floor(MAX_ANSWER_CHARS / Math.max(1, entries.length))))
  const tasks: Record<string, WaitedTaskView> = {}
  for (const [id, task] of entries) {
    const view: WaitedTaskView = {
      state: task.state,
      ...(task.state === 'COMPLETED' ? { output: outputText(task.output, share) } : {}),
      ...(task.error === undefined ? {} : { error: { code: task.error.code, message: outputText(task.error.message, 2_000) } }),
    }
    Object.defineProperty(tasks, id, { value: view, enumerable: true, writable: true, configurable: true })
  }
  return { ...(answer.added === undefined ? {} : { added: answer.added }), timedOut: answer.timedOut, tasks }
}

/** A wait's answer, or ERR_CANCELLED as soon as the attempt is stopped: the CLI is not left in a call nobody will answer. */
function untilStopped(waitFor: () => Promise<WaitTasksAnswer>, binding: ToolBinding): Promise<WaitTasksAnswer> {
  const signal = binding.stopped
  if (signal === undefined) return waitFor()
  const stopped = (): WaitTasksAnswer => ({
    ok: false,
    error: { code: 'ERR_CANCELLED', message: `task "${binding.taskId}" was stopped (cancelled or timed out) while it waited` },
  })
  if (signal.aborted) return Promise.resolve(stopped())
  return new Promise((resolve) => {
    const onAbort = () => resolve(stopped())
    signal.addEventListener('abort', onAbort, { once: true })
    void waitFor().then((answer) => {
      signal.removeEventListener('abort', onAbort)
      resolve(answer)
    })
  })
}
