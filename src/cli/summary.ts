import pc from 'picocolors'
import type { GovernorReport } from '../runtime/admission/governor.ts'
import type { RunResult } from '../runtime/core/result.ts'
import { fit, terminalText } from './terminal-text.ts'

const STATE_COLOR: Record<string, (text: string) => string> = {
  COMPLETED: pc.green,
  FAILED: pc.red,
  SKIPPED: pc.yellow,
  CANCELLED: pc.magenta,
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
  const rows = Object.entries(result.tasks)
  const shown = rows.length > MAX_ROWS ? rows.filter(([, t]) => t.state !== 'COMPLETED').slice(0, MAX_ROWS) : rows
  const cells = shown.map(([id, task]) => ({
    id: terminalText(id),
    state: task.reused ? `${task.state} (reused)` : task.state,
    attempts: String(task.attempts),
    duration: task.durationMs === undefined ? '-' : formatMs(task.durationMs),
    error: task.error ? terminalText(`${task.error.code}: ${task.error.message}`) : '',
  }))
  const withErrors = cells.some((c) => c.error !== '')
  const stateW = Math.max(5, ...cells.map((c) => c.state.length))
  const triesW = 5
  const durW = Math.max(8, ...cells.map((c) => c.duration.length))
  const fixed = stateW + triesW + durW + 6
  const idW = Math.min(Math.max(4, ...cells.map((c) => c.id.length)), Math.max(8, withErrors ? Math.floor((columns - fixed) / 2) : columns - fixed))
  const errW = Math.max(0, columns - fixed - idW - 2)
  const line = (id: string, state: string, tries: string, dur: string, error: string, color = (t: string) => t) =>
    `${fit(id, idW).padEnd(idW)}  ${color(state.padEnd(stateW))}  ${tries.padStart(triesW)}  ${dur.padStart(durW)}${withErrors && error ? `  ${fit(error, errW)}` : ''}`.trimEnd()
  const table = [
    pc.dim(line('task', 'state', 'tries', 'duration', withErrors ? 'error' : '')),
    ...cells.map((c) => line(c.id, c.state, c.attempts, c.duration, c.error, STATE_COLOR[c.state.split(' ')[0]!])),
  ]
  const t = result.totals
  const lines = [
    ...table,
    ...(shown.length < rows.length ? [pc.dim(`(${rows.length - shown.length} completed tasks not listed)`)] : []),
    `run ${terminalText(result.runId, 128)}: ${result.status.toUpperCase()} — ${t.completed}/${t.tasks} completed, ${t.failed} failed, ${t.skipped} skipped, ${t.cancelled} cancelled${t.reused ? `, ${t.reused} reused` : ''}`,
    `makespan ${formatMs(result.makespanMs)} vs sequential ${formatMs(result.sequentialMs)} · speedup ${result.speedup.toFixed(2)}x ` +
      `at maxParallel ${result.maxParallel} (efficiency ${(result.efficiency * 100).toFixed(0)} % ` +
      `of ${result.parallelism ?? result.maxParallel} slots, ` +
      `strategy ${result.strategy})`,
    ...(result.parallelization === undefined ? [] : [`verdict ${result.parallelization}: ${verdictReason(result)}`]),
    ...(result.peakConcurrency === undefined
      ? []
      : [`saved ${formatMs(result.timeSavedMs ?? 0)} · success ${((result.successRate ?? 0) * 100).toFixed(0)} % · peak ${result.peakConcurrency} running`]),
    ...(result.governor && result.governor.samples > 0 ? [formatGovernor(result.governor)] : []),
    ...(result.usage && (result.usage.total.costUsd > 0 || result.usage.total.tokens > 0 || result.usage.total.apiCalls > 0)
      ? [`usage: $${result.usage.total.costUsd} · ${result.usage.total.tokens} tokens · ${result.usage.total.apiCalls} API calls`]
      : []),
    ...(result.status !== 'completed' && options.resumeCommand ? [pc.bold(`resume: ${options.resumeCommand}`)] : []),
    ...(options.runDirectory ? [pc.dim(`journal and logs: ${options.runDirectory} · HTML report: troupe report ${result.runId}`)] : []),
  ]
  return lines.join('\n')
}

/**
 * Why the run got its verdict (DESIGN.md: PARALLEL when makespan ≤ 1.2 × lowerBoundMs,
 * PARTIAL when ≤ 0.8 × sequentialMs, else SEQUENTIAL), in the terms that decided it.
 */
export function verdictReason(r: RunResult): string {
  const slots = r.parallelism ?? r.maxParallel
  const byPath = (r.boundedBy ?? (r.criticalPathMs >= r.sequentialMs / Math.max(1, slots) ? 'critical-path' : 'slots')) === 'critical-path'
  const lower = formatMs(r.lowerBoundMs)
  const bound = byPath ? `the critical path (${lower})` : `the work spread over ${slots} slots (${lower})`
  if (r.parallelization === 'PARALLEL') {
    if (r.speedup < 1.1) return `as parallel as the dependencies allow — the makespan is within 20 % of ${bound}, so no schedule could do much better`
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
  const throttled = g.throttleEvents > 0 ? `throttled ${formatMs(g.throttledMs)} in ${g.throttleEvents} period(s)` : 'never throttled'
  return `governor (${g.mode}): ${throttled}; peak CPU ${g.peakCpuPercent} %, peak memory ${g.peakMemoryMb} MB over ${g.samples} samples${limits}`
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}
