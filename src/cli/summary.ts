import Table from 'cli-table3'
import pc from 'picocolors'
import type { GovernorReport } from '../runtime/admission/governor.ts'
import type { RunResult } from '../runtime/core/result.ts'

const STATE_COLOR: Record<string, (text: string) => string> = {
  COMPLETED: pc.green,
  FAILED: pc.red,
  SKIPPED: pc.yellow,
  CANCELLED: pc.magenta,
}

/** The end-of-run table: one row per task, then the run's speedup figures. */
export function formatSummary(result: RunResult): string {
  const table = new Table({
    head: ['task', 'state', 'attempts', 'duration', 'error'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [null, null, null, null, 60],
  })
  const rows = Object.entries(result.tasks)
  const shown = rows.length > 60 ? rows.filter(([, t]) => t.state !== 'COMPLETED').slice(0, 60) : rows
  for (const [id, task] of shown) {
    const color = STATE_COLOR[task.state] ?? ((text: string) => text)
    table.push([
      id,
      color(task.reused ? `${task.state} (reused)` : task.state),
      String(task.attempts),
      task.durationMs === undefined ? '-' : formatMs(task.durationMs),
      task.error ? `${task.error.code}: ${task.error.message}` : '',
    ])
  }
  const t = result.totals
  const lines = [
    table.toString(),
    ...(shown.length < rows.length ? [`(${rows.length - shown.length} completed tasks not listed)`] : []),
    `run ${result.runId}: ${result.status.toUpperCase()} — ${t.completed}/${t.tasks} completed, ${t.failed} failed, ${t.skipped} skipped, ${t.cancelled} cancelled${t.reused ? `, ${t.reused} reused` : ''}`,
    `makespan ${formatMs(result.makespanMs)} vs sequential ${formatMs(result.sequentialMs)} (lower bound ${formatMs(result.lowerBoundMs)}, critical path ${formatMs(result.criticalPathMs)})`,
    `speedup ${result.speedup.toFixed(2)}x at maxParallel ${result.maxParallel} (efficiency ${(result.efficiency * 100).toFixed(0)} %, strategy ${result.strategy}): ${result.parallelization}`,
    ...(result.governor ? [formatGovernor(result.governor)] : []),
    ...(result.usage && (result.usage.total.costUsd > 0 || result.usage.total.tokens > 0 || result.usage.total.apiCalls > 0)
      ? [`usage: $${result.usage.total.costUsd} · ${result.usage.total.tokens} tokens · ${result.usage.total.apiCalls} API calls`]
      : []),
  ]
  return lines.join('\n')
}

function formatGovernor(g: GovernorReport): string {
  const steps = (g.concurrency ?? []).map((c) => c.limit)
  const limits =
    steps.length > 1
      ? `; concurrency ${steps[0]} → ${steps.at(-1)} (${Math.min(...steps)}–${Math.max(...steps)} over ${steps.length - 1} changes)`
      : ''
  return `governor (${g.mode}): throttled ${formatMs(g.throttledMs)} in ${g.throttleEvents} period(s); peak CPU ${g.peakCpuPercent} %, peak memory ${g.peakMemoryMb} MB over ${g.samples} samples${limits}`
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}
