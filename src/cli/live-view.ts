import { createLogUpdate } from 'log-update'
import pc from 'picocolors'
import type { TaskAddedEvent, TaskLogEvent, TaskStateEvent } from '../runtime/report/events.ts'
import type { Runtime } from '../runtime/runtime.ts'
import type { Run } from '../runtime/run.ts'
import type { GovernorView } from '../monitor/governor-monitor.ts'
import { Monitor } from '../monitor/monitor.ts'
import type { RunSnapshot } from '../monitor/run-monitor.ts'
import { formatMs } from './summary.ts'
import { quoteArg } from './quote-arg.ts'
import { fit, terminalText } from './terminal-text.ts'

const BAR_WIDTH = 16

export interface LiveViewOptions {
  /** A TTY stream. @default process.stderr */
  readonly stream?: NodeJS.WriteStream
  /** Redraw period, so elapsed times and the ETA tick between events. @default 100 */
  readonly intervalMs?: number
  /** A line to keep above the live block for a state change, or undefined for none. */
  readonly formatEvent?: (event: TaskStateEvent) => string | undefined
  /** A line to keep above the live block for a `ctx.log` line. @default none */
  readonly formatLog?: (event: TaskLogEvent) => string | undefined
  /** A line to keep above the live block for a task added at run time. @default none */
  readonly formatAdded?: (event: TaskAddedEvent) => string | undefined
}

/**
 * The terminal's live view of a run, redrawn in place on stderr (with log-update): a
 * line per running agent with its progress, last message and elapsed time; counts per
 * state, ETA, speedup so far and the governor's status. Notable state changes scroll
 * above it.
 */
export class LiveView {
  readonly #monitor: Monitor
  readonly #runId: string
  readonly #stream: NodeJS.WriteStream
  readonly #log: ReturnType<typeof createLogUpdate>
  readonly #timer: NodeJS.Timeout
  readonly #unsubscribe: () => void
  #status: 'live' | 'stopped' = 'live'

  constructor(runtime: Runtime, run: Run, options: LiveViewOptions = {}) {
    this.#monitor = new Monitor(runtime)
    this.#runId = run.id
    this.#stream = options.stream ?? process.stderr
    this.#log = createLogUpdate(this.#stream)
    const { formatEvent, formatLog, formatAdded } = options
    this.#unsubscribe = this.#monitor.subscribe((event) => {
      const e = event.data as { runId?: string }
      if (e.runId !== this.#runId) return
      const line =
        event.name === 'task:state'
          ? formatEvent?.(event.data as TaskStateEvent)
          : event.name === 'task:log'
            ? formatLog?.(event.data as TaskLogEvent)
            : event.name === 'task:added'
              ? formatAdded?.(event.data as TaskAddedEvent)
              : undefined
      if (line !== undefined) this.print(line)
    })
    this.#timer = setInterval(() => this.#render(), options.intervalMs ?? 100)
    this.#timer.unref()
  }

  /**
   * Prints `line` above the live block and redraws the block at once. Everything written to
   * the stream while the view is live goes through here: a direct write moves the cursor
   * under log-update, which then erases the wrong lines and leaves a stale block on screen,
   * and a persisted line without the redraw leaves no block until the next tick.
   */
  print(line: string): void {
    if (this.#status === 'stopped') {
      this.#stream.write(`${line}\n`)
      return
    }
    // One write for the erase, the line and the redrawn block: between two writes a terminal
    // can show the screen with no block at all.
    this.#stream.cork()
    try {
      this.#log.persist(line)
      this.#render()
    } finally {
      this.#stream.uncork()
    }
  }

  /**
   * Clears the live block and stops listening; what was persisted stays. `finalText` (the
   * end-of-run summary) replaces the block in the same write: between two writes a terminal
   * can show the screen with neither.
   */
  stop(finalText?: string): void {
    if (this.#status === 'stopped') {
      if (finalText !== undefined) this.#stream.write(`${finalText}\n`)
      return
    }
    this.#status = 'stopped'
    clearInterval(this.#timer)
    this.#unsubscribe()
    this.#monitor.close()
    this.#stream.cork()
    try {
      this.#log.clear()
      this.#log.done()
      if (finalText !== undefined) this.#stream.write(`${finalText}\n`)
    } finally {
      this.#stream.uncork()
    }
  }

  #render(): void {
    if (this.#status === 'stopped') return
    const snapshot = this.#monitor.snapshot()
    const run = snapshot.runs.find((r) => r.runId === this.#runId)
    if (run === undefined) return
    this.#log(renderLiveView(run, snapshot.governor, this.#stream.columns || 80, this.#stream.rows || 24))
  }
}

/** The live block for one run, at most `rows - 1` lines of at most `columns` characters. */
export function renderLiveView(run: RunSnapshot, governor: GovernorView, columns: number, rows = 24): string {
  const c = run.counts
  let cached = 0
  for (const task of run.tasks) if (task.cached) cached++
  const counts = [
    pc.cyan(`${c.RUNNING} running`),
    pc.yellow(`${c.QUEUED} queued`),
    `${c.PENDING} pending`,
    pc.green(`${c.COMPLETED} completed${cached > 0 ? ` (${cached} cached)` : ''}`),
    ...(c.FAILED > 0 ? [pc.red(`${c.FAILED} failed`)] : []),
    ...(c.SKIPPED > 0 ? [pc.yellow(`${c.SKIPPED} skipped`)] : []),
    ...(c.CANCELLED > 0 ? [pc.magenta(`${c.CANCELLED} cancelled`)] : []),
    ...(c.AWAITING_APPROVAL > 0 ? [pc.bold(pc.yellow(`${c.AWAITING_APPROVAL} awaiting approval`))] : []),
  ].join(' · ')
  const eta = run.etaMs === undefined ? 'ETA unknown' : `ETA ${formatMs(run.etaMs)}`
  const speedup = `speedup so far ${run.speedup.toFixed(2)}x`
  const figures = `elapsed ${formatMs(run.elapsedMs)} · ${eta} · ${speedup} · maxParallel ${run.maxParallel}`
  const pauses = run.pauses
    .filter((p) => p.until > run.at)
    .map((p) => {
      const limits = p.limits.map((l) => terminalText(l, 40)).join(', ')
      const resumes = `resumes in ${formatMs(p.until - run.at)} (${new Date(p.until).toLocaleTimeString()})`
      return pc.yellow(`rate limit: ${limits} paused — ${resumes}`)
    })
  // While tasks wait, the governor's latest hold says why ("held: build needs ~1.0 CPU, 0.2 free").
  const held = governor.held !== undefined && c.QUEUED > 0 ? [pc.yellow(`last hold: ${terminalText(governor.held.message, 200)}`)] : []
  const governorLine = governor.status === 'n/a' ? [] : [formatGovernor(governor)]
  // A run waiting for a person says so, with the command that answers (at most 3 lines; the rest counted).
  const awaiting = run.tasks.filter((t) => t.state === 'AWAITING_APPROVAL')
  const approvals = awaiting.slice(0, 3).map((t) => {
    const command = `troupe approve ${terminalText(`${quoteArg(run.runId)} ${quoteArg(t.id)}`, 300)}`
    return pc.yellow(`awaiting approval: ${terminalText(t.id, 64)} — ${command}`)
  })
  if (awaiting.length > 3) approvals.push(pc.yellow(`… and ${awaiting.length - 3} more awaiting approval (troupe runs lists them)`))
  const lines = [counts, figures, ...governorLine, ...held, ...pauses, ...approvals].map((l) => fitStyled(l, columns))
  const running = run.tasks.filter((t) => t.state === 'RUNNING')
  const room = Math.max(1, rows - lines.length - 2)
  const idWidth = Math.min(24, Math.max(4, ...running.map((t) => terminalText(t.id, 64).length)))
  for (const t of running.slice(0, running.length > room ? room - 1 : room)) {
    const fraction = t.fraction ?? 0
    const filled = Math.round(fraction * BAR_WIDTH)
    const elapsed = formatMs(t.runningSince === undefined ? 0 : run.at - t.runningSince).padStart(8)
    const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`
    const percent = `${Math.round(fraction * 100)}%`.padStart(4)
    const head = `  ${fit(terminalText(t.id, 64), idWidth).padEnd(idWidth)} ${bar} ${percent} ${elapsed}  `
    const agent = `${terminalText(t.agent, 64)}${t.attempt > 1 ? ` #${t.attempt}` : ''}`
    const tail = fit(t.message === undefined ? agent : `${agent}: ${terminalText(t.message)}`, Math.max(0, columns - head.length - 1))
    lines.push(`${pc.bold(head)}${pc.dim(tail)}`)
  }
  if (running.length > room) lines.push(pc.dim(`  … and ${running.length - (room - 1)} more running`))
  return lines.join('\n')
}

function formatGovernor(g: GovernorView): string {
  const readings = [
    g.cpuPercent === undefined
      ? undefined
      : `cpu ${g.cpuPercent.toFixed(0)} %${g.thresholds ? ` (throttle ≥ ${g.thresholds.cpu.throttlePercent} %)` : ''}`,
    g.memoryPercent === undefined
      ? undefined
      : `memory ${g.memoryPercent.toFixed(0)} %${g.thresholds ? ` (≥ ${g.thresholds.memory.throttlePercent} %)` : ''}`,
  ].filter((r) => r !== undefined)
  const status =
    g.status === 'throttled' ? pc.red(`governor: THROTTLED${g.reason ? ` on ${g.reason}` : ''}`) : pc.green('governor: admitting')
  return readings.length > 0 ? `${status} — ${readings.join(', ')}` : status
}

/** Cuts a line that may hold colour codes to `columns` visible characters. */
function fitStyled(line: string, columns: number): string {
  const plain = line.replace(/\u001b\[[0-9;]*m/g, '')
  return plain.length < columns ? line : fit(plain, columns - 1)
}
