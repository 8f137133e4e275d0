import { isAbsolute, relative, resolve } from 'node:path'
import pc from 'picocolors'
import { loadConfig } from '../runtime/core/config.ts'
import type { ApprovalEvent, TaskAddedEvent, TaskLogEvent, TaskStateEvent } from '../runtime/report/events.ts'
import { runDir } from '../runtime/journal/paths.ts'
import { type Strategy } from '../runtime/plan/plan.ts'
import { loadPlan } from '../runtime/plan/load-plan.ts'
import { createRuntime } from '../runtime/runtime.ts'
import { resultText } from '../runtime/journal/journal.ts'
import type { startDashboard } from '../dashboard/server.ts'
import { findConfigFile } from './config-file.ts'
import { EXIT } from './exit-codes.ts'
import { INPUT_ERROR_CODES } from '../runtime/core/errors.ts'
import type { LiveView } from './live-view.ts'
import { onInterrupt } from './interrupt.ts'
import { formatMs, formatSummary, plural } from './summary.ts'
import { quoteArg } from './quote-arg.ts'
import { terminalText } from './terminal-text.ts'

export interface RunCommandOptions {
  readonly maxParallel?: number
  readonly strategy?: Strategy
  readonly config?: string
  readonly runId?: string
  readonly json?: boolean
  readonly quiet?: boolean
  readonly progress?: boolean
  /** Serve the live dashboard: `true` on {@link DEFAULT_DASHBOARD_PORT}, or this port. */
  readonly dashboard?: boolean | number
  /** Interface the dashboard binds. @default '127.0.0.1' */
  readonly host?: string
  /** Host names browsers use to reach a dashboard bound beyond loopback. */
  readonly allowHost?: readonly string[]
  /** Keep the dashboard open after the run until Ctrl-C. */
  readonly keepOpen?: boolean
  /** `local` or `redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]`; overrides REDIS_URL, which overrides config.backend. */
  readonly backend?: string
  /** `--keep-worktrees`: worktree tasks' worktrees and branches outlive the run. */
  readonly keepWorktrees?: boolean
  /** `--no-cache` makes it false: no output is taken from the task cache. */
  readonly cache?: boolean
}

/** The dashboard's port when `--dashboard` is given without one. */
export const DEFAULT_DASHBOARD_PORT = 4700

/** `troupe run <plan>`: runs a plan with progress on stderr. Returns the exit code. */
export async function runCommand(planFile: string, options: RunCommandOptions): Promise<number> {
  const config = loadConfig({ file: findConfigFile({ config: options.config, planFile }) })
  const plan = loadPlan(planFile)
  const backend = options.backend ?? (process.env.REDIS_URL || undefined)
  const runtime = createRuntime({ config, ...(backend === undefined ? {} : { backend }) })
  try {
    await runtime.ready()
  } catch (error) {
    await runtime.close({ force: true })
    throw error
  }
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined
  if (options.dashboard !== undefined && options.dashboard !== false) {
    try {
      const port = options.dashboard === true ? DEFAULT_DASHBOARD_PORT : options.dashboard
      const { startDashboard } = await import('../dashboard/server.ts')
      dashboard = await startDashboard(runtime, {
        port,
        ...(options.host === undefined ? {} : { host: options.host }),
        ...(options.allowHost === undefined ? {} : { allowHosts: options.allowHost }),
      })
    } catch (error) {
      await runtime.close({ force: true })
      throw error
    }
  }
  // Loaded only for a terminal that shows it (log-update and its helpers), before the run starts.
  const live = !options.quiet && options.progress !== false && process.stderr.isTTY === true
  const LiveViewClass: typeof LiveView | undefined = live ? (await import('./live-view.ts')).LiveView : undefined
  const run = runtime.run(plan, {
    ...(options.runId === undefined ? {} : { runId: options.runId }),
    ...(options.keepWorktrees ? { keepWorktrees: true } : {}),
    ...(options.cache === false ? { cache: false } : {}),
    ...(options.maxParallel === undefined ? {} : { maxParallel: options.maxParallel }),
    ...(options.strategy === undefined ? {} : { strategy: options.strategy }),
  })
  const startedAt = Date.now()
  const err = (line: string) => process.stderr.write(`${line}\n`)
  if (dashboard) err(pc.bold(`troupe: dashboard at ${dashboard.url}`))
  const formats = { formatEvent: describeTransition, formatLog: describeLog, formatAdded: describeAdded }
  const view = LiveViewClass ? new LiveViewClass(runtime, run, formats) : undefined
  // While the live view is up, every line goes above it through the view (see LiveView.print).
  const say = (line: string) => (view === undefined ? err(line) : view.print(line))
  if (!options.quiet) {
    run.on('run:start', (e) =>
      say(
        pc.bold(
          `troupe: run ${terminalText(e.runId, 128)} — ${plural(e.tasks, 'task')} of "${terminalText(e.name, 120)}", ` +
            `strategy ${e.strategy}, maxParallel ${e.maxParallel}${e.reused ? `, ${e.reused} reused from the journal` : ''}`,
        ),
      ),
    )
  }
  // Said even with --quiet: a run waiting for a person must say so, and how to answer it.
  const awaitingApproval = new Set<string>()
  run.on('task:approval', (e) => {
    if (e.state === 'awaiting') awaitingApproval.add(e.taskId)
    else awaitingApproval.delete(e.taskId)
    say(describeApproval(e))
  })
  if (!options.quiet && view === undefined) {
    const stamp = (at: number) => pc.dim(`[${((at - startedAt) / 1000).toFixed(2).padStart(7)}s]`)
    run.on('task:state', (e) => {
      const line = describeTransition(e)
      if (line) err(`${stamp(e.at)} ${line}`)
    })
    run.on('task:log', (e) => err(`${stamp(e.at)}   ${describeLog(e)}`))
    run.on('task:added', (e) => err(`${stamp(e.at)} ${describeAdded(e)}`))
  }

  // First signal: cancel gracefully (the journal is flushed as the run ends). Second:
  // force — close the runtime with `force`, which kills what is left, and exit 130 now.
  let ended = false
  let interruptedRun = false
  const interrupt = onInterrupt({
    graceful(signal) {
      if (ended) return
      interruptedRun = true
      say(pc.yellow(`troupe: ${signal} received — cancelling running tasks (again to force exit)…`))
      void run.cancel(`Interrupted by ${signal}`)
    },
    async force(signal) {
      view?.stop()
      err(pc.red(`troupe: second ${signal} — forcing exit`))
      await Promise.race([runtime.close({ force: true }), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
      process.exit(EXIT.interrupted)
    },
  })
  try {
    const result = await run.result
    ended = true
    // The live block and the summary that replaces it go out in one write (LiveView.stop).
    const end = (text: string) => (view === undefined ? err(text) : view.stop(text))
    // Found before any task ran (e.g. an agent module that cannot load): the input's fault,
    // and its one line is all there is to say — no table of tasks that never started.
    if (result.error !== undefined && INPUT_ERROR_CODES.has(result.error.code) && !interruptedRun) {
      end(`troupe: ${terminalText(result.error.message, 4000, { multiline: true })} [${result.error.code}]`)
      if (options.json) process.stdout.write(`${resultText(result, { plain: true })}\n`)
      return EXIT.invalidInput
    }
    const resume = `troupe run ${quoteArg(planFile)} --run-id ${quoteArg(result.runId)}`
    end(
      formatSummary(result, {
        columns: process.stderr.columns || Number(process.env.COLUMNS) || 80,
        resumeCommand: resume,
        ...(config.checkpoint.enabled ? { runDirectory: shortPath(runDir(resolve(config.checkpoint.dir), result.runId)) } : {}),
      }),
    )
    // Stopped while a task awaited approval: the resume waits again, and this answers it.
    for (const taskId of awaitingApproval) {
      const args = terminalText(`${quoteArg(result.runId)} ${quoteArg(taskId)}`, 400)
      err(pc.yellow(`troupe: task ${terminalText(taskId, 64)} was awaiting approval; after \`${resume}\`: troupe approve ${args}`))
    }
    // Plain JSON for jq: repeated objects written out in full; tagged only what JSON cannot hold (10n, a Map, a cycle).
    if (options.json) process.stdout.write(`${resultText(result, { plain: true })}\n`)
    if (dashboard && options.keepOpen && !interrupt.interrupted) {
      err(pc.bold(`troupe: the run ended; the dashboard stays open at ${dashboard.url} — Ctrl-C to exit`))
      await interrupt.next()
    }
    if (interruptedRun) return EXIT.interrupted
    if (result.status === 'paused') return EXIT.paused
    return result.status === 'completed' ? EXIT.ok : EXIT.incomplete
  } finally {
    interrupt.dispose()
    view?.stop()
    // Sends every open page the final state before the server goes.
    await dashboard?.close()
    await runtime.close({ force: true })
  }
}

/** `path` relative to the working directory when it is inside it: shorter on a narrow terminal. */
function shortPath(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}

/** A task's approve gate, with the exact commands that decide it (docs/plans.md#approval-gates). */
export function describeApproval(e: ApprovalEvent): string {
  const task = terminalText(e.taskId, 64)
  const by = `(by ${e.by ?? 'library'})`
  if (e.state === 'approved') return `${pc.green('✓ approved ')} ${pc.bold(task)} ${by}`
  if (e.state === 'rejected') return `${pc.red('✗ rejected ')} ${pc.bold(task)} ${by}: ${terminalText(e.reason ?? '', 200)}`
  const args = terminalText(`${quoteArg(e.runId)} ${quoteArg(e.taskId)}`, 400)
  return pc.bold(pc.yellow(`⏸ task ${task} awaits approval before ${e.before}: troupe approve ${args}  (reject: add --reject "reason")`))
}

function describeLog(e: TaskLogEvent): string {
  return pc.dim(`${terminalText(e.taskId, 64)}: ${terminalText(e.message)}`)
}

function describeAdded(e: TaskAddedEvent): string {
  const by = e.parent === undefined ? '' : ` by ${terminalText(e.parent, 64)}`
  const about = e.description === undefined ? '' : pc.dim(` — ${terminalText(e.description, 120)}`)
  return `${pc.blue('+ added    ')} ${pc.bold(terminalText(e.taskId, 64))} (${terminalText(e.agent, 64)})${by}${about}`
}

export function describeTransition(e: TaskStateEvent): string | undefined {
  const id = pc.bold(terminalText(e.taskId, 64))
  // The message's first line: a process's stderr tail follows in the summary.
  const firstLine = (e.error?.message.split('\n')[0] ?? '').replace(/; stderr:$/, '')
  const error = e.error ? `${terminalText(e.error.code, 40)} ${terminalText(firstLine)}` : ''
  switch (e.state) {
    case 'RUNNING':
      if (e.previous === 'AWAITING_APPROVAL') return `${pc.cyan('▶ merging  ')} ${id} (approved)`
      return `${pc.cyan('▶ started  ')} ${id} (${terminalText(e.agent, 64)}${e.attempt > 1 ? `, attempt ${e.attempt}` : ''})`
    case 'COMPLETED':
      return `${pc.green('✓ completed')} ${id}${e.previous === 'PENDING' ? ' (reused)' : e.cached ? ' (cached)' : ''}`
    case 'FAILED':
      return `${pc.red('✗ failed   ')} ${id}: ${error}`
    case 'SKIPPED':
      return `${pc.yellow('↷ skipped  ')} ${id}: ${e.error ? terminalText(e.error.message) : ''}`
    case 'CANCELLED':
      return `${pc.magenta('■ cancelled')} ${id}`
    case 'QUEUED':
      if (e.previous !== 'RUNNING') return undefined
      // A rate-limited attempt is re-queued uncounted: no attempt "failed".
      if (e.error?.code === 'ERR_RATE_LIMITED') {
        return `${pc.yellow('↻ re-queued')} ${id} after ERR_RATE_LIMITED (not counted as an attempt)`
      }
      return `${pc.yellow('↻ retrying ')} ${id} after ${terminalText(e.error?.code ?? '', 40)} (attempt ${e.attempt} failed)`
    default:
      return undefined
  }
}

export { formatMs }
