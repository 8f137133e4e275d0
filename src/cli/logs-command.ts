import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { MAILBOX_FILE, MAX_MESSAGE_CHARS, parseMessages } from '../runtime/coordination/mailbox.ts'
import { MAX_NOTE_CHARS, parseNotes, SCRATCHPAD_FILE } from '../runtime/coordination/scratchpad.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import { liveHolder } from '../runtime/journal/lock.ts'
import { attemptLogFile, journalFile, loggedAttempts, runDir, taskIdSegment } from '../runtime/journal/paths.ts'
import { readJournal, summarize } from '../runtime/journal/reader.ts'
import { EXIT } from './exit-codes.ts'
import { checkRunId } from './run-id.ts'
import { terminalText } from './terminal-text.ts'

export interface LogsCommandOptions {
  readonly config?: string
  /** Only this attempt (1-based). */
  readonly attempt?: number
  /** Print the run's scratchpad notes instead of the attempt logs. */
  readonly scratchpad?: boolean
  /** Print the messages tasks sent each other (`send_message`) instead of the attempt logs. */
  readonly messages?: boolean
  /** `-f`: keep printing what the run logs until it ends. */
  readonly follow?: boolean
  /** How often `--follow` looks for new lines. @default 250 */
  readonly pollMs?: number
}

/**
 * `troupe logs <runId> [taskId] [--attempt N]`: prints the stored attempt logs of a run
 * (`<checkpoint.dir>/<runId>/logs/<taskId>/<attempt>.log`) on stdout, each under a
 * `== <taskId> · attempt N ==` header.
 */
export function logsCommand(runId: string, taskId: string | undefined, options: LogsCommandOptions): number | Promise<number> {
  checkRunId(runId)
  const root = resolve(loadConfig({ file: options.config }).checkpoint.dir)
  const dir = runDir(root, runId)
  if (!existsSync(dir)) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `No run "${runId}" in ${root} (checkpoint.dir); \`troupe runs\` lists the runs`)
  }
  if (options.scratchpad && options.messages) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', 'Expected one of `--scratchpad` and `--messages`, got both')
  }
  if (options.scratchpad) return printScratchpad(dir, runId, taskId)
  if (options.messages) return printMessages(dir, runId, taskId)
  if (options.follow) return follow(root, dir, runId, taskId, options)
  const logs = join(dir, 'logs')
  const tasks = existsSync(logs) ? inPlanOrder(readdirSync(logs).map(decodeURIComponent), planOrder(root, runId)) : []
  if (taskId !== undefined && !tasks.includes(taskId)) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `No logs for task "${taskId}" in run "${runId}". ${
        tasks.length > 0
          ? `Tasks with logs: ${tasks.slice(0, 20).join(', ')}${tasks.length > 20 ? ', …' : ''}.`
          : 'No task of this run logged anything.'
      }`,
    )
  }
  let printed = 0
  for (const task of taskId === undefined ? tasks : [taskId]) {
    for (const attempt of loggedAttempts(join(logs, taskIdSegment(task)))) {
      if (options.attempt !== undefined && attempt !== options.attempt) continue
      process.stdout.write(`== ${task} · attempt ${attempt} ==\n`)
      const text = readFileSync(attemptLogFile(dir, task, attempt), 'utf8')
      process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`)
      printed++
    }
  }
  if (printed === 0 && options.attempt !== undefined) {
    const which = taskId === undefined ? '' : ` for task "${taskId}"`
    throw new TroupeError('ERR_ARGUMENT_INVALID', `No log of attempt ${options.attempt} in run "${runId}"${which}`)
  }
  if (printed === 0) process.stderr.write(`troupe: run ${runId} has no stored logs\n`)
  return EXIT.ok
}

/**
 * `--follow`: prints the logs there are, then every line the run appends, under a header
 * whenever the file changes, until no live process holds the run (its lock); then the
 * last lines and exit. A run that is not running prints what it has, like without `-f`.
 */
async function follow(root: string, dir: string, runId: string, taskId: string | undefined, options: LogsCommandOptions): Promise<number> {
  const offsets = new Map<string, number>()
  const partial = new Map<string, string>()
  let current: string | undefined
  // Read from the journal once, and again only when a task the order lacks (added at run time) has logs.
  let order = planOrder(root, runId)
  let known = new Set(order)
  const poll = (final: boolean) => {
    const logs = join(dir, 'logs')
    const ids = existsSync(logs) ? readdirSync(logs).map(decodeURIComponent) : []
    if (ids.some((id) => !known.has(id))) {
      order = planOrder(root, runId)
      known = new Set(order)
    }
    const tasks = inPlanOrder(ids, order)
    for (const task of taskId === undefined ? tasks : tasks.filter((t) => t === taskId)) {
      for (const attempt of loggedAttempts(join(logs, taskIdSegment(task)))) {
        if (options.attempt !== undefined && attempt !== options.attempt) continue
        const file = attemptLogFile(dir, task, attempt)
        const from = offsets.get(file) ?? 0
        let size: number
        try {
          size = statSync(file).size
        } catch {
          continue
        }
        if (size <= from) continue
        const fd = openSync(file, 'r')
        const chunk = Buffer.alloc(size - from)
        try {
          readSync(fd, chunk, 0, chunk.length, from)
        } finally {
          closeSync(fd)
        }
        offsets.set(file, size)
        // Whole lines only, until the run ends: the rest waits for its newline.
        const text = (partial.get(file) ?? '') + chunk.toString('utf8')
        const cut = final ? text.length : text.lastIndexOf('\n') + 1
        partial.set(file, text.slice(cut))
        if (cut === 0) continue
        if (current !== file) process.stdout.write(`== ${task} · attempt ${attempt} ==\n`)
        current = file
        const out = text.slice(0, cut)
        process.stdout.write(out.endsWith('\n') ? out : `${out}\n`)
      }
    }
  }
  for (;;) {
    const live = liveHolder(dir) !== undefined
    poll(!live)
    if (!live) break
    await sleep(options.pollMs ?? 250)
  }
  if (offsets.size === 0) process.stderr.write(`troupe: run ${runId} has no stored logs\n`)
  return EXIT.ok
}

/** Task ids in the order of the run's plan, from its journal (empty when it cannot be read). */
function planOrder(root: string, runId: string): readonly string[] {
  try {
    const contents = readJournal(journalFile(root, runId))
    return contents === undefined ? [] : (summarize(contents.records).lastStart?.plan.tasks.map((task) => task.id) ?? [])
  } catch {
    return []
  }
}

function inPlanOrder(ids: string[], order: readonly string[]): string[] {
  const rank = new Map(order.map((id, i) => [id, i]))
  return ids.sort((a, b) => (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity) || a.localeCompare(b))
}

/** `--scratchpad`: the run's notes, oldest first, `<time> <taskId>: <text>` (sanitised for the terminal). */
function printScratchpad(dir: string, runId: string, taskId: string | undefined): number {
  const file = join(dir, SCRATCHPAD_FILE)
  const all = existsSync(file) ? parseNotes(readFileSync(file, 'utf8')) : []
  const notes = all.filter((note) => taskId === undefined || note.taskId === taskId)
  for (const note of notes) {
    const text = terminalText(note.text, MAX_NOTE_CHARS + 100, { multiline: true })
    process.stdout.write(`${new Date(note.at).toISOString()} ${terminalText(note.taskId)}: ${text}\n`)
  }
  if (notes.length === 0) {
    process.stderr.write(`troupe: run ${runId} has no scratchpad notes${taskId === undefined ? '' : ` from task "${taskId}"`}\n`)
  }
  return EXIT.ok
}

/** `--messages`: the messages tasks sent each other, oldest first, `<time> <from> → <to>: <text>` (sanitised for the terminal). */
function printMessages(dir: string, runId: string, taskId: string | undefined): number {
  const file = join(dir, MAILBOX_FILE)
  const all = existsSync(file) ? parseMessages(readFileSync(file, 'utf8')) : []
  const messages = all.filter((message) => taskId === undefined || message.from === taskId || message.to === taskId)
  for (const message of messages) {
    const text = terminalText(message.text, MAX_MESSAGE_CHARS + 100, { multiline: true })
    process.stdout.write(`${new Date(message.at).toISOString()} ${terminalText(message.from)} → ${terminalText(message.to)}: ${text}\n`)
  }
  if (messages.length === 0) {
    process.stderr.write(`troupe: run ${runId} has no messages${taskId === undefined ? '' : ` from or to task "${taskId}"`}\n`)
  }
  return EXIT.ok
}
