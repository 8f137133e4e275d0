import { stringify } from '../runtime/journal/codec.ts'
import { TASK_STATES, type TaskState } from '../runtime/core/task-state.ts'
import type { MonitorSnapshot } from '../monitor/monitor.ts'
import { type ApprovalView, approvalView, type MessagesView, messageViews, repairViews } from '../monitor/run-facts.ts'
import type { AgentUtilisation, RunSnapshot, TaskView } from '../monitor/run-monitor.ts'
import type { RunResult } from '../runtime/report/result.ts'
import { readAsset } from './read-asset.ts'

/** A half-open interval `[start, end)` to place on a worker slot. */
export interface Interval {
  readonly start: number
  readonly end: number
}

/**
 * Greedy slot assignment: intervals by start time, each on the lowest slot free at its
 * start. Uses as many slots as the peak overlap, which is the least possible.
 * Returns the slot of each interval, in input order.
 */
export function assignSlots(intervals: readonly Interval[]): number[] {
  const order = intervals.map((_, i) => i).sort((a, b) => intervals[a]!.start - intervals[b]!.start || a - b)
  const freeAt: number[] = []
  const slots = new Array<number>(intervals.length)
  for (const i of order) {
    const { start, end } = intervals[i]!
    let slot = freeAt.findIndex((t) => t <= start)
    if (slot === -1) slot = freeAt.length
    freeAt[slot] = end
    slots[i] = slot
  }
  return slots
}

/** Extra facts a journal may know of the plan, beyond the RunResult. */
export interface ReportContext {
  /** Agent name by task id. */
  readonly agents?: Readonly<Record<string, string>>
  /** Dependency ids by task id. */
  readonly deps?: Readonly<Record<string, readonly string[]>>
  /** The plan's `description` and `tags` by task id. */
  readonly about?: Readonly<Record<string, { readonly description?: string; readonly tags?: readonly string[] }>>
  /** Log lines by task id (the last ones are shown). */
  readonly logs?: Readonly<Record<string, readonly string[]>>
  /** Attempts of earlier invocations of a resumed run, by task id: each a bar of its own on the timeline. */
  readonly earlier?: Readonly<Record<string, readonly EarlierAttempt[]>>
  /** The run's scratchpad notes, oldest first. */
  readonly notes?: readonly { readonly taskId: string; readonly at: number; readonly text: string }[]
  /** The run's messages between tasks (`readRunMessages(runDir)`): shaped again, so any list is shown bounded and sanitised. */
  readonly messages?: MessagesView
  /** Each gated task's latest approval (the journal's approval records), by task id. */
  readonly approvals?: Readonly<Record<string, ApprovalView>>
}

/** An attempt the final RunResult no longer shows: a resumed run's earlier invocation ran it. */
export interface EarlierAttempt {
  readonly attempt: number
  readonly start: number
  readonly end: number
  readonly state: TaskState
}

/** Log lines per task a report keeps (the last ones; the task's drill-down shows them all). */
export const REPORT_LOGS = 200

/**
 * The dashboard's snapshot of a finished run, rebuilt from its RunResult: each task that
 * ran is one bar from its first start to its last finish, on a greedily assigned slot.
 */
export function snapshotFromResult(result: RunResult, context: ReportContext = {}): MonitorSnapshot {
  const entries = Object.entries(result.tasks)
  // Every bar on the timeline: earlier invocations' attempts (failed ones, kept), then each
  // task's span in the final result, slots assigned over all of them.
  const bars: { id: string; attempt: number; start: number; end: number; failed: boolean }[] = []
  for (const [id] of entries) {
    for (const e of context.earlier?.[id] ?? []) {
      bars.push({ id, attempt: e.attempt, start: e.start, end: e.end, failed: e.state !== 'COMPLETED' })
    }
  }
  for (const [id, t] of entries) {
    if (t.startedAt === undefined || t.finishedAt === undefined) continue
    bars.push({ id, attempt: t.attempts, start: t.startedAt, end: t.finishedAt, failed: t.state === 'FAILED' })
  }
  const slots = assignSlots(bars)
  const intervalsOf = new Map<string, { attempt: number; slot: number; start: number; end: number; failed?: true }[]>()
  bars.forEach((b, k) => {
    const list = intervalsOf.get(b.id) ?? []
    list.push({ attempt: b.attempt, slot: slots[k]!, start: b.start, end: b.end, ...(b.failed ? { failed: true as const } : {}) })
    intervalsOf.set(b.id, list)
  })
  const ran = entries.filter(([, t]) => t.startedAt !== undefined && t.finishedAt !== undefined)
  const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>
  const levels = dependencyLevelsById(entries.map(([id]) => id), context.deps ?? {})
  const agents = new Map<string, { tasks: number; busyMs: number }>()
  const tasks = entries.map(([id, t]): TaskView => {
    counts[t.state]++
    const agent = context.agents?.[id] ?? (t as { agent?: string }).agent ?? 'unknown'
    const a = agents.get(agent) ?? { tasks: 0, busyMs: 0 }
    a.tasks++
    a.busyMs += t.durationMs ?? 0
    agents.set(agent, a)
    const earlier = context.earlier?.[id] ?? []
    const repairs = repairViews(t.repairs)
    const approval = context.approvals?.[id]
    return {
      id,
      agent,
      deps: context.deps?.[id] ?? [],
      level: levels.get(id) ?? 0,
      state: t.state,
      history: [...earlier.map((e) => e.state), t.state],
      attempt: t.attempts,
      logs: (context.logs?.[id] ?? []).slice(-REPORT_LOGS),
      ...(t.output === undefined ? {} : { output: t.output }),
      intervals: intervalsOf.get(id) ?? [],
      busyMs: t.durationMs ?? 0,
      reused: t.reused === true,
      ...(t.cached ? { cached: true as const } : {}),
      ...(t.error ? { error: t.error } : {}),
      ...(t.workspace ? { workspace: t.workspace } : {}),
      ...(t.worker !== undefined && t.worker !== 'local' ? { worker: t.worker } : {}),
      ...(context.about?.[id]?.description === undefined ? {} : { description: context.about[id].description }),
      ...(context.about?.[id]?.tags === undefined ? {} : { tags: context.about[id].tags }),
      ...(t.added ? { added: true as const, ...(t.parent === undefined ? {} : { parent: t.parent }) } : {}),
      ...(repairs === undefined ? {} : { repairs }),
      ...(approval === undefined ? {} : { approval: approvalView(approval) }),
    }
  })
  const messages = context.messages === undefined ? undefined : messageViews(context.messages.messages, context.messages.omitted)
  const capacity = result.makespanMs * result.maxParallel
  const run: RunSnapshot = {
    runId: result.runId,
    name: result.name,
    strategy: result.strategy,
    status: result.status,
    maxParallel: result.maxParallel,
    startedAt: result.startedAt,
    at: ran.length > 0 ? Math.max(...ran.map(([, t]) => t.finishedAt!)) : result.finishedAt,
    counts,
    elapsedMs: result.makespanMs,
    busyMs: result.sequentialMs,
    speedup: result.speedup,
    etaMs: 0,
    slots: Math.max(0, ...slots.map((slot) => slot + 1)),
    agents: [...agents].map(([agent, a]): AgentUtilisation => ({
      agent,
      tasks: a.tasks,
      busyMs: a.busyMs,
      utilisation: capacity > 0 ? Math.min(1, a.busyMs / capacity) : 0,
    })),
    tasks,
    pauses: [],
    ...(context.notes !== undefined && context.notes.length > 0
      ? { notes: context.notes.map((n) => ({ runId: result.runId, ...n })) }
      : {}),
    ...(messages !== undefined && messages.messages.length > 0 ? { messages } : {}),
    final: {
      makespanMs: result.makespanMs,
      sequentialMs: result.sequentialMs,
      criticalPathMs: result.criticalPathMs,
      lowerBoundMs: result.lowerBoundMs,
      speedup: result.speedup,
      efficiency: result.efficiency,
      parallelization: result.parallelization,
      totals: result.totals,
    },
  }
  return { runs: [run], governor: result.governor ? { status: 'n/a', report: result.governor } : { status: 'n/a' } }
}

/**
 * A self-contained HTML report of a finished run: the dashboard page with its stylesheet,
 * script and the run's snapshot inlined. It loads nothing from the network.
 */
export function renderReport(result: RunResult, context: ReportContext = {}): string {
  // `<` escaped keeps `</script>` inside strings from closing the element early.
  const data = snapshotJson(snapshotFromResult(result, context)).replace(/</g, '\\u003c')
  const script = readAsset('app.js').replace(/<\/script/gi, '<\\/script')
  const style = readAsset('styles.css').replace(/<\/style/gi, '<\\/style')
  return readAsset('index.html')
    .replace('<title>troupe dashboard</title>', () => `<title>troupe report: ${escapeHtml(result.runId)}</title>`)
    .replace('<link rel="stylesheet" href="styles.css">', () => `<style>\n${style}</style>`)
    // A finished run has nothing to control.
    .replace(/<section id="controls"[\s\S]*?<\/section>\n/, '')
    .replace(
      '<script src="app.js"></script>',
      () => `<script type="application/json" id="troupe-data">${data}</script>\n<script>\n${script}</script>`,
    )
}

function dependencyLevelsById(ids: readonly string[], deps: Readonly<Record<string, readonly string[]>>): Map<string, number> {
  const level = new Map<string, number>()
  const visit = (id: string, seen: Set<string>): number => {
    const known = level.get(id)
    if (known !== undefined) return known
    if (seen.has(id)) return 0
    seen.add(id)
    let deepest = -1
    for (const d of deps[id] ?? []) deepest = Math.max(deepest, visit(d, seen))
    level.set(id, deepest + 1)
    return deepest + 1
  }
  for (const id of ids) visit(id, new Set())
  return level
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * Outputs may hold what JSON cannot (10n, a Map, a cycle): they go through the journal's
 * codec, as tagged values. An output too deep even for it is left out of the report.
 */
function snapshotJson(snapshot: ReturnType<typeof snapshotFromResult>): string {
  try {
    return stringify(snapshot)
  } catch {
    const runs = snapshot.runs.map((run) => ({ ...run, tasks: run.tasks.map(({ output: _omitted, ...task }) => task) }))
    return stringify({ ...snapshot, runs })
  }
}
