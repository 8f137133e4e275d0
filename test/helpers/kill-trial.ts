import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { survivors } from '../../src/bench/survivors.ts'
import { isAlive, readProc, readProcTable, type ProcessIdentity } from '../../src/runtime/execution/processes/process-tree.ts'
import { CLI_ENTRY, runCli, type CliResult } from './cli.ts'
import { exited, until } from './journal-file.ts'

const TSX = import.meta.resolve('tsx')
const EXEC_AGENT = join(import.meta.dirname, '..', 'fixtures', 'agents', 'exec-agent.mjs')

/**
 * One kill -9 trial of containment: `troupe run` with three process agents (`sleep`, a bash
 * with two background sleeps, a module agent's `ctx.exec`) each appending its name to
 * marks.txt when its work is done, SIGKILLed `delayMs` after every agent process started;
 * then the same command again. Counts the first invocation's processes still alive 2 s
 * after the resume started, and how many times each task's work completed.
 */
export interface KillTrial {
  /** Processes of the killed invocation alive right after the kill. */
  readonly leftAtKill: number
  /** Of those, alive 2 s after the resume started. */
  readonly leftAfterResume: number
  /** When the last of them was gone, ms after the resume started (undefined: not within 2 s). */
  readonly goneAfterMs: number | undefined
  /** Completed executions per task (marks.txt lines). */
  readonly executions: Readonly<Record<string, number>>
  readonly resume: CliResult
}

export const TRIAL_TASKS = ['sleeper', 'tree', 'exec'] as const

export function writeTrialPlan(dir: string, workMs: number, mark: string): string {
  const marks = join(dir, 'marks.txt')
  const seconds = (workMs / 1000).toFixed(2)
  const plan = {
    name: 'containment',
    maxParallel: 3,
    agents: {
      sleeper: { kind: 'command', run: ['sh', '-c', `sleep ${seconds} && echo sleeper >> ${marks}`] },
      tree: { kind: 'command', run: ['bash', '-c', `sleep ${seconds} & sleep ${seconds} & wait; echo tree >> ${marks}`] },
    },
    tasks: [
      { id: 'sleeper', agent: 'sleeper', retries: 0 },
      { id: 'tree', agent: 'tree', retries: 0 },
      { id: 'exec', agent: EXEC_AGENT, retries: 0, input: { command: 'sh', args: ['-c', `sleep ${seconds}; echo exec >> ${marks}`], mark } },
    ],
  }
  const file = join(dir, 'plan.json')
  writeFileSync(file, JSON.stringify(plan))
  return file
}

/** The sleeps of every task of the trial are running (carrying `mark`). */
function allStarted(mark: string): boolean {
  const sleeps = survivors(mark).filter(({ pid }) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep'
    } catch {
      return false
    }
  })
  return sleeps.length >= 4
}

export interface TrialOptions {
  readonly delayMs: number
  readonly workMs: number
  /** SIGKILL the supervisor first, so that only the ledger and the environment tag are left. */
  readonly killSupervisor?: boolean
  /** How long to watch for the killed invocation's processes after the resume starts. @default 2000 */
  readonly watchMs?: number
}

/** Starts `troupe run`, SIGKILLs it once every agent runs (+ `delayMs`); returns its processes alive right after. */
export async function startAndKill(dir: string, runId: string, options: TrialOptions): Promise<ProcessIdentity[]> {
  const mark = `${runId}-${Math.random().toString(36).slice(2)}`
  const plan = writeTrialPlan(dir, options.workMs, mark)
  const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', plan, '--run-id', runId, '--quiet'], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1', TROUPE_MARK: mark },
    stdio: 'ignore',
  })
  const exit = exited(child)
  await until(() => allStarted(mark), 'every agent process to start', 60_000)
  await new Promise((resolve) => setTimeout(resolve, options.delayMs))
  if (options.killSupervisor) {
    // Only the ledger and the environment tag are left to find the orphans.
    for (const entry of readProcTable()) {
      if (entry.ppid !== child.pid) continue
      if (readFileSync(`/proc/${entry.pid}/cmdline`, 'latin1').includes('supervisor')) process.kill(entry.pid, 'SIGKILL')
    }
  }
  child.kill('SIGKILL')
  await exit
  return survivors(mark).flatMap(({ pid }) => {
    const entry = readProc(pid)
    return entry === undefined ? [] : [{ pid, startTicks: entry.startTicks }]
  })
}

export async function killTrial(dir: string, runId: string, options: TrialOptions): Promise<KillTrial> {
  const left = await startAndKill(dir, runId, options)
  const plan = join(dir, 'plan.json')
  const started = Date.now()
  const resuming = runCli(['run', plan, '--run-id', runId, '--json', '--quiet'], { cwd: dir })
  let goneAfterMs: number | undefined
  while (Date.now() - started < (options.watchMs ?? 2_000)) {
    if (goneAfterMs === undefined && !left.some(isAlive)) goneAfterMs = Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const leftAfterResume = left.filter(isAlive).length
  const resume = await resuming
  const lines = existsSync(join(dir, 'marks.txt')) ? readFileSync(join(dir, 'marks.txt'), 'utf8').split('\n').filter(Boolean) : []
  const executions = Object.fromEntries(TRIAL_TASKS.map((task) => [task, lines.filter((line) => line === task).length]))
  return { leftAtKill: left.length, leftAfterResume, goneAfterMs, executions, resume }
}
