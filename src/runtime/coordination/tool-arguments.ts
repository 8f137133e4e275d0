import { z } from 'zod'
import { MAX_INBOX_MESSAGES, MAX_MESSAGE_CHARS, MAX_PAGE_MESSAGES, MAX_TASK_ID_CHARS } from './mailbox.ts'
import { MAX_WAIT_IDS, MAX_WAIT_SECONDS } from './run-tools.ts'
import { MAX_NOTE_CHARS, MAX_NOTES, MAX_PAGE_NOTES } from './scratchpad.ts'

/** The run tools' names, as the MCP server registers them. */
export const RUN_TOOL_NAMES = [
  'claim_files',
  'release_files',
  'report_progress',
  'log',
  'scratchpad_read',
  'scratchpad_append',
  'add_tasks',
  'wait_tasks',
  'send_message',
  'read_messages',
] as const

/** Most paths in one claim_files / release_files call, and most tasks in one add_tasks call. */
export const MAX_TOOL_ITEMS = 1_000
/** Longest claimed path or glob. */
export const MAX_PATH_CHARS = 4_096

/**
 * A zod error option whose message names the argument, what is allowed and what was received:
 * ``Expected `fraction` to be a number from 0 to 1, got `2` (number)``. The MCP SDK returns it to
 * the client as the tool's error text, followed by ` at <argument path>`.
 */
function expected(what: string) {
  return { error: (issue: { readonly input?: unknown }) => `Expected ${what}, got ${received(issue.input)}` }
}

/** A short description of a received value (long strings and lists by their size). */
function received(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'string') return value.length > 60 ? `a string of ${value.length} characters` : `\`${JSON.stringify(value)}\` (string)`
  if (Array.isArray(value)) return value.length === 0 ? '`[]` (an empty list)' : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`
  const text = JSON.stringify(value) ?? String(value)
  return `\`${text.length > 60 ? `${text.slice(0, 60)}…` : text}\` (${value === null ? 'null' : typeof value})`
}

const pathsWhat = `\`paths\` to be a list of 1 to ${MAX_TOOL_ITEMS} file paths or globs`
const pathWhat = `each of \`paths\` to be a file path or glob: a non-empty string of at most ${MAX_PATH_CHARS} characters`
const path = z
  .string(expected(pathWhat))
  .min(1, expected(pathWhat))
  .max(MAX_PATH_CHARS, expected(pathWhat))
const paths = z
  .array(path, expected(pathsWhat))
  .min(1, expected(pathsWhat))
  .max(MAX_TOOL_ITEMS, expected(pathsWhat))

const fractionWhat = '`fraction` to be a number from 0 to 1'
const progressMessageWhat = '`message` to be a string of at most 2000 characters'
const logWhat = '`message` to be a non-empty string of at most 8000 characters'
const noteWhat = `\`text\` to be a non-empty note of at most ${MAX_NOTE_CHARS} characters`
const sinceWhat = `\`since\` to be a note position from 0 to ${MAX_NOTES} (the \`next\` of the previous page)`
const limitWhat = `\`limit\` to be a whole number of notes from 1 to ${MAX_PAGE_NOTES}`
const tasksWhat = `\`tasks\` to be a list of 1 to ${MAX_TOOL_ITEMS} tasks (objects with the fields of plan tasks)`
const taskWhat = 'each of `tasks` to be an object with the fields of a plan task'
const waitWhat = '`wait` to be true or false'
const timeoutWhat = `\`timeout\` to be a number of seconds from 1 to ${MAX_WAIT_SECONDS}`
const idsWhat = `\`ids\` to be a list of 1 to ${MAX_WAIT_IDS} task ids (ones this task added)`
const idWhat = `each of \`ids\` to be a task id: a non-empty string of at most ${MAX_TASK_ID_CHARS} characters`
const toWhat = `\`to\` to be a task id: a non-empty string of at most ${MAX_TASK_ID_CHARS} characters`
const messageWhat = `\`text\` to be a non-empty message of at most ${MAX_MESSAGE_CHARS} characters`
const inboxSinceWhat = `\`since\` to be a message position from 0 to ${MAX_INBOX_MESSAGES} (the \`next\` of the previous page)`
const inboxLimitWhat = `\`limit\` to be a whole number of messages from 1 to ${MAX_PAGE_MESSAGES}`
const timeout = z.number(expected(timeoutWhat)).min(1, expected(timeoutWhat)).max(MAX_WAIT_SECONDS, expected(timeoutWhat)).optional()
const taskId = (what: string) => z.string(expected(what)).min(1, expected(what)).max(MAX_TASK_ID_CHARS, expected(what))

/** The input schema of each run tool, as the MCP server registers them. */
export const toolArguments = {
  claimFiles: { paths },
  releaseFiles: { paths },
  reportProgress: {
    fraction: z.number(expected(fractionWhat)).min(0, expected(fractionWhat)).max(1, expected(fractionWhat)),
    message: z.string(expected(progressMessageWhat)).max(2_000, expected(progressMessageWhat)).optional(),
  },
  log: { message: z.string(expected(logWhat)).min(1, expected(logWhat)).max(8_000, expected(logWhat)) },
  scratchpadRead: {
    since: z
      .number(expected(sinceWhat))
      .int(expected(sinceWhat))
      .min(0, expected(sinceWhat))
      .max(MAX_NOTES, expected(sinceWhat))
      .optional(),
    limit: z
      .number(expected(limitWhat))
      .int(expected(limitWhat))
      .min(1, expected(limitWhat))
      .max(MAX_PAGE_NOTES, expected(limitWhat))
      .optional(),
  },
  scratchpadAppend: { text: z.string(expected(noteWhat)).min(1, expected(noteWhat)).max(MAX_NOTE_CHARS, expected(noteWhat)) },
  addTasks: {
    tasks: z
      .array(z.record(z.string(), z.unknown(), expected(taskWhat)), expected(tasksWhat))
      .min(1, expected(tasksWhat))
      .max(MAX_TOOL_ITEMS, expected(tasksWhat)),
    wait: z.boolean(expected(waitWhat)).optional(),
    timeout,
  },
  waitTasks: {
    ids: z.array(taskId(idWhat), expected(idsWhat)).min(1, expected(idsWhat)).max(MAX_WAIT_IDS, expected(idsWhat)),
    timeout,
  },
  sendMessage: {
    to: taskId(toWhat),
    text: z.string(expected(messageWhat)).min(1, expected(messageWhat)).max(MAX_MESSAGE_CHARS, expected(messageWhat)),
  },
  readMessages: {
    since: z
      .number(expected(inboxSinceWhat))
      .int(expected(inboxSinceWhat))
      .min(0, expected(inboxSinceWhat))
      .max(MAX_INBOX_MESSAGES, expected(inboxSinceWhat))
      .optional(),
    limit: z
      .number(expected(inboxLimitWhat))
      .int(expected(inboxLimitWhat))
      .min(1, expected(inboxLimitWhat))
      .max(MAX_PAGE_MESSAGES, expected(inboxLimitWhat))
      .optional(),
  },
}
