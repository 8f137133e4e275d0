import pc from 'picocolors'
import wrapAnsi from 'wrap-ansi'
import type { GovernorReport } from '../runtime/governor/governor.ts'
import type { RunResult } from '../runtime/report/result.ts'
import { fit, terminalText } from './terminal-text.ts'

const STATE_COLOR: Record<string, (text: string) => string> = {
  COMPLETED: pc.green,
  FAILED: pc.red,
  SKIPPED: pc.yellow,
  CANCELLED: pc.magenta,
}

/** A task's state, with how many repairs it took (docs/workspaces.md "Repair"). */
function withRepairs(state: string, repairs: readonly unknown[] = []): string {
  const n = repairs.length
  return n === 0 ? state : `${state} (${n} repair${n === 1 ? '' : 's'})`
}

/** Rows listed at most; beyond, completed tasks are left out first. */
const MAX_ROWS = 40

export interface SummaryOptions {
  /** Terminal width. @default 80 */
  readonly columns?: number
  /** The command that resumes the run, shown when it did not complete. */
  readonly resumeCommand?: string
  /** Where the run's journal and logs are, when it has them. */
  readonly runDirectory?: string
}

/**
 * The end-of-run summary: a compact table (one line per task, no rules between rows, an
 * error column only when some task has an error, every line within `columns`), then the
 * run's figures with the verdict and its reason, and how to resume an incomplete run.
 */
export function formatSummary(result: RunResult, options: SummaryOptions = {}): string {
  const columns = Math.max(40, options.columns ?? 80)
  // Prose lines wrap at word boundaries one column short of the edge (a full line makes some
  // terminals wrap early); commands and paths are never broken (see `labelled`).
  const width = columns - 1
  const prose = (text: string) => wrapAnsi(text, width, { hard: true, trim: true })
  const rows = Object.entries(result.tasks)
  const shown = rows.length > MAX_ROWS ? rows.filter(([, t]) => t.state !== 'COMPLETED').slice(0, MAX_ROWS) : rows
  const cells = shown.map(([id, task]) => ({
    id: terminalText(id),
    state: task.reused ? `${task.state} (reused)` : task.cached ? `${task.state} (cached)` : withRepairs(task.state, task.repairs),
    attempts: String(task.attempts),
    duration: task.durationMs === undefined ? '-' : formatMs(task.durationMs),
    code: task.error ? terminalText(task.error.code, 64) : '',
  }))
  const stateW = Math.max(5, ...cells.map((c) => c.state.length))
  const triesW = 5
  const durW = Math.max(8, ...cells.map((c) => c.duration.length))
  const fixed = stateW + triesW + durW + 6
  // The error column holds whole codes, never cut; the messages follow the table. When the
  // codes leave the ids under 8 columns, the column goes and the codes are read below.
  // The ids come first: when the codes would cut them (below 24 columns), the column goes.
  const codeW = Math.max(0, ...cells.map((c) => c.code.length))
  const longestId = Math.max(4, ...cells.map((c) => c.id.length))
  const withCodes = codeW > 0 && width - fixed - codeW - 2 >= Math.min(24, longestId)
  const idW = Math.min(longestId, Math.max(4, width - fixed - (withCodes ? codeW + 2 : 0)))
  const line = (id: string, state: string, tries: string, dur: string, code: string, color = (t: string) => t) =>
    [fit(id, idW).padEnd(idW), color(state.padEnd(stateW)), tries.padStart(triesW), dur.padStart(durW)]
      .concat(withCodes && code ? [code] : [])
      .join('  ')
      .trimEnd()
  const table = [
    pc.dim(line('task', 'state', 'tries', 'duration', withCodes ? 'error' : '')),
    ...cells.map((c) => line(c.id, c.state, c.attempts, c.duration, c.code, STATE_COLOR[c.state.split(' ')[0]!])),
  ]
  const t = result.totals
  const notListed = rows.length - shown.length
  const lines = [
    ...table,
    ...(notListed > 0 ? [pc.dim(`(${plural(notListed, 'completed task')} not listed)`)] : []),
    ...failures(result, width),
    prose(
      `run ${terminalText(result.runId, 128)}: ${result.status.toUpperCase()} — ${t.completed}/${plural(t.tasks, 'task')} completed, ` +
        `${t.failed} failed, ${t.skipped} skipped, ${t.cancelled} cancelled${t.reused ? `, ${t.reused} reused` : ''}` +
        `${t.cached ? `, ${t.cached} cached` : ''}`,
    ),
    prose(
      `makespan ${formatMs(result.makespanMs)} vs sequential ${formatMs(result.sequentialMs)} · speedup ${result.speedup.toFixed(2)}x ` +
        `at maxParallel ${result.maxParallel} (efficiency ${(result.efficiency * 100).toFixed(0)} % ` +
        `of ${result.parallelism ?? result.maxParallel} slots, strategy ${result.strategy})`,
    ),
    ...(result.parallelization === undefined ? [] : [prose(`verdict ${result.parallelization}: ${verdictReason(result)}`)]),
    ...(result.peakConcurrency === undefined
      ? []
      : [
          prose(
            `saved ${formatMs(result.timeSavedMs ?? 0)} · success ${((result.successRate ?? 0) * 100).toFixed(0)} % · ` +
              `peak ${result.peakConcurrency} running`,
          ),
        ]),
    ...(result.governor && result.governor.samples > 0 ? [prose(formatGovernor(result.governor))] : []),
    ...(result.usage && (result.usage.total.costUsd > 0 || result.usage.total.tokens > 0 || result.usage.total.apiCalls > 0)
      ? [prose(`usage: $${result.usage.total.costUsd} · ${result.usage.total.tokens} tokens · ${result.usage.total.apiCalls} API calls`)]
      : []),
    ...(result.status !== 'completed' && options.resumeCommand ? [pc.bold(shellCommand('resume:', options.resumeCommand, width))] : []),
    ...(options.runDirectory
      ? [
          pc.dim(labelled('journal and logs:', options.runDirectory, width)),
          pc.dim(shellCommand('HTML report:', `troupe report ${result.runId}`, width)),
        ]
      : []),
  ]
  return lines.join('\n')
}

/** Failed tasks listed below the table at most; the rest are counted. */
const MAX_FAILURES = 5
/** Lines of a failed process's stderr shown under its error. */
const STDERR_LINES = 6

/**
 * Each failed task's error in full (wrapped, never cut mid-word), with the last lines of its
 * stderr when the error carries them (`…; stderr:\n<tail>` from command and CLI agents).
 */
function failures(result: RunResult, width: number): string[] {
  const failed = Object.entries(result.tasks).filter(([, task]) => task.state === 'FAILED' && task.error !== undefined)
  const lines: string[] = []
  for (const [id, task] of failed.slice(0, MAX_FAILURES)) {
    const [first = '', ...rest] = terminalText(task.error!.message, 4000, { multiline: true }).split('\n')
    const code = pc.red(terminalText(task.error!.code, 64))
    const head = `${pc.red('✗')} ${terminalText(id, 128)}: ${code} ${first.replace(/; stderr:$/, '')}`
    lines.push(wrapAnsi(head, width, { hard: true, trim: true }).replaceAll('\n', '\n    '))
    const tail = rest.filter((l) => l.trim() !== '').slice(-STDERR_LINES)
    if (tail.length > 0) lines.push(...tail.map((l) => pc.dim(`    │ ${fit(l, width - 6)}`)))
  }
  if (failed.length > MAX_FAILURES) {
    lines.push(pc.dim(`(${plural(failed.length - MAX_FAILURES, 'more failed task')}: troupe logs ${terminalText(result.runId, 128)})`))
  }
  return lines
}

/**
 * `label value` on one line when it fits; else the label, and the value on the next line,
 * whole: a command or a path broken over two lines cannot be copied.
 */
function labelled(label: string, value: string, width: number): string {
  const text = terminalText(value, 4000)
  if (label.length + 1 + text.length <= width) return `${label} ${text}`
  return `${label}\n${text.length + 2 <= width ? '  ' : ''}${text}`
}

/**
 * `label command` on one line when it fits; else the command under the label, broken between
 * its arguments with ` \\` continuations, so it still pastes into a shell as one command.
 */
function shellCommand(label: string, command: string, width: number): string {
  const text = terminalText(command, 4000)
  if (label.length + 1 + text.length <= width) return `${label} ${text}`
  // Arguments, an option kept with its value (`--run-id <id>`).
  const words = text.match(/(?:--[\w-]+ (?!-))?(?:'(?:[^']|'\\'')*'|\S)+/g) ?? [text]
  const lines: string[] = []
  let current = ' '
  for (const word of words) {
    if (current.trim() !== '' && current.length + 1 + word.length + 2 > width) {
      lines.push(`${current} \\`)
      current = '   '
    }
    current += ` ${word}`
  }
  lines.push(current)
  return `${label}\n${lines.join('\n')}`
}

/** `1 task`, `2 tasks`, `2 branches`: the count and the noun, plural unless the count is 1. */
export function plural(count: number, noun: string): string {
  return `${count} ${count === 1 ? noun : /(?:ch|sh|s|x)$/.test(noun) ? `${noun}es` : `${noun}s`}`
}

/**
 * Why the run got its verdict (docs/architecture.md: PARALLEL when makespan ≤ 1.2 × lowerBoundMs,
 * PARTIAL when ≤ 0.8 × sequentialMs, else SEQUENTIAL), in the terms that decided it.
 */
export function verdictReason(r: RunResult): string {
  const slots = r.parallelism ?? r.maxParallel
  const byPath = (r.boundedBy ?? (r.criticalPathMs >= r.sequentialMs / Math.max(1, slots) ? 'critical-path' : 'slots')) === 'critical-path'
  const lower = formatMs(r.lowerBoundMs)
  const bound = byPath ? `the critical path (${lower})` : `the work spread over ${slots} slots (${lower})`
  if (r.parallelization === 'PARALLEL') {
    if (r.speedup < 1.1) {
      return `as parallel as the dependencies allow — the makespan is within 20 % of ${bound}, so no schedule could do much better`
    }
    return `the makespan is within 20 % of the best possible, ${bound}`
  }
  const ratio = r.lowerBoundMs > 0 ? (r.makespanMs / r.lowerBoundMs).toFixed(1) : '?'
  if (r.parallelization === 'PARTIAL') return `faster than sequential, but ${ratio}× the best possible, ${bound}`
  return `the makespan is over 80 % of the sequential time; the best possible was ${bound}`
}

function formatGovernor(g: GovernorReport): string {
  const steps = (g.concurrency ?? []).map((c) => c.limit)
  const limits =
    steps.length > 1
      ? `; concurrency ${steps[0]} → ${steps.at(-1)} (${Math.min(...steps)}–${Math.max(...steps)} over ${steps.length - 1} changes)`
      : ''
  const throttled =
    g.throttleEvents > 0 ? `throttled ${formatMs(g.throttledMs)} in ${plural(g.throttleEvents, 'period')}` : 'never throttled'
  const peaks = `peak CPU ${g.peakCpuPercent} %, peak memory ${g.peakMemoryMb} MB over ${plural(g.samples, 'sample')}`
  return `governor (${g.mode}): ${throttled}; ${peaks}${limits}`
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}
