import pc from 'picocolors'
import { loadConfig } from '../runtime/core/config.ts'
import type { TaskStateEvent } from '../runtime/core/events.ts'
import { type Strategy } from '../runtime/plan/plan.ts'
import { loadPlan } from '../runtime/plan/load-plan.ts'
import { createRuntime } from '../runtime/runtime.ts'
import { startDashboard } from '../dashboard/server.ts'
import { EXIT } from './exit-codes.ts'
import { LiveView } from './live-view.ts'
import { formatMs, formatSummary } from './summary.ts'

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
  /** `local` or `redis://HOST:PORT[/DB]`; overrides config.backend. */
  readonly backend?: string
  /** `--keep-worktrees`: worktree tasks' worktrees and branches outlive the run. */
  readonly keepWorktrees?: boolean
}

/** The dashboard's port when `--dashboard` is given without one. */
export const DEFAULT_DASHBOARD_PORT = 4700

/** `troupe run <plan>`: runs a plan with progress on stderr. Returns the exit code. */
export async function runCommand(planFile: string, options: RunCommandOptions): Promise<number> {
  const config = loadConfig({ file: options.config })
  const plan = loadPlan(planFile)
  const runtime = createRuntime({ config, ...(options.backend === undefined ? {} : { backend: options.backend }) })
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
      dashboard = await startDashboard(runtime, { port, ...(options.host === undefined ? {} : { host: options.host }) })
    } catch (error) {
      await runtime.close({ force: true })
      throw error
    }
  }
  const run = runtime.run(plan, {
    ...(options.runId === undefined ? {} : { runId: options.runId }),
    ...(options.keepWorktrees ? { keepWorktrees: true } : {}),
    ...(options.maxParallel === undefined ? {} : { maxParallel: options.maxParallel }),
    ...(options.strategy === undefined ? {} : { strategy: options.strategy }),
  })
  const startedAt = Date.now()
  const err = (line: string) => process.stderr.write(`${line}\n`)
  if (dashboard) err(pc.bold(`troupe: dashboard at ${dashboard.url}`))
  const view =
    !options.quiet && options.progress !== false && process.stderr.isTTY === true
      ? new LiveView(runtime, run, { formatEvent: describeTransition })
      : undefined
  if (!options.quiet) {
    run.on('run:start', (e) =>
      err(pc.bold(`troupe: run ${e.runId} — ${e.tasks} tasks of "${e.name}", strategy ${e.strategy}, maxParallel ${e.maxParallel}${e.reused ? `, ${e.reused} reused from the journal` : ''}`)),
    )
  }
  if (!options.quiet && view === undefined) {
    run.on('task:state', (e) => {
      const line = describeTransition(e)
      if (line) err(`${pc.dim(`[${((e.at - startedAt) / 1000).toFixed(2).padStart(7)}s]`)} ${line}`)
    })
    run.on('task:log', (e) => err(`${pc.dim(`[${((e.at - startedAt) / 1000).toFixed(2).padStart(7)}s]`)}   ${pc.dim(`${e.taskId}: ${e.message}`)}`))
  }

  let interrupted = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return
    interrupted = true
    err(pc.yellow(`troupe: ${signal} received — cancelling running tasks…`))
    void run.cancel(`Interrupted by ${signal}`)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const result = await run.result
    view?.stop()
    err(formatSummary(result))
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`)
    if (interrupted) return EXIT.interrupted
    return result.status === 'completed' ? EXIT.ok : EXIT.incomplete
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    view?.stop()
    await dashboard?.close()
    await runtime.close({ force: true })
  }
}

function describeTransition(e: TaskStateEvent): string | undefined {
  const id = pc.bold(e.taskId)
  switch (e.state) {
    case 'RUNNING':
      return `${pc.cyan('▶ started  ')} ${id} (${e.agent}${e.attempt > 1 ? `, attempt ${e.attempt}` : ''})`
    case 'COMPLETED':
      return `${pc.green('✓ completed')} ${id}${e.previous === 'PENDING' ? ' (reused)' : ''}`
    case 'FAILED':
      return `${pc.red('✗ failed   ')} ${id}: ${e.error?.code} ${e.error?.message ?? ''}`
    case 'SKIPPED':
      return `${pc.yellow('↷ skipped  ')} ${id}: ${e.error?.message ?? ''}`
    case 'CANCELLED':
      return `${pc.magenta('■ cancelled')} ${id}`
    case 'QUEUED':
      return e.previous === 'RUNNING' ? `${pc.yellow('↻ retrying ')} ${id} after ${e.error?.code} (attempt ${e.attempt} failed)` : undefined
    default:
      return undefined
  }
}

export { formatMs }
