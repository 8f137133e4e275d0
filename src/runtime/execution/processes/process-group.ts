import { spawn } from 'node:child_process'
import { signalGroup } from './process-tree.ts'

/**
 * One OS process started in its own process group (`detached: true`, so its pid is the
 * group id), with everything it starts. The group is signalled as a whole: on Node no
 * library kills grandchildren, so a `sh -c 'sleep 100 & sleep 100'` would otherwise leave
 * orphans behind. Invariant: once `exited` settles, no process of the group is left —
 * whatever survived the leader (background jobs, daemons) got SIGTERM, then SIGKILL.
 */

export interface GroupExit {
  /** The leader's exit code, or undefined when it was killed by a signal or never started. */
  readonly exitCode: number | undefined
  readonly signal: NodeJS.Signals | undefined
  /** Why the process could not start (ENOENT, a missing cwd), if it did not. */
  readonly spawnError: Error | undefined
}

export interface SpawnOptions {
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  readonly onStdout: (chunk: Buffer) => void
  readonly onStderr: (chunk: Buffer) => void
  /** How long orphans that outlive the leader get between SIGTERM and SIGKILL. */
  readonly graceMs: number
}

type GroupState = 'running' | 'stopping' | 'exited'

/** Every group this process holds, so an exiting troupe leaves none behind. */
const live = new Set<ProcessGroup>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // 'exit' handlers run synchronously; process.kill is synchronous too.
  process.on('exit', () => {
    for (const group of live) group.kill()
  })
}

export class ProcessGroup {
  readonly pid: number | undefined
  readonly exited: Promise<GroupExit>
  #state: GroupState = 'running'
  #killTimer: NodeJS.Timeout | undefined

  constructor(file: string, args: readonly string[], options: SpawnOptions) {
    installExitHook()
    // node:child_process directly: execa's extras (buffering, rejecting, cleanup, final-newline
    // stripping) are all turned off here, and its import and per-spawn cost are not.
    const child = spawn(file, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.pid = child.pid
    child.stdout.on('data', options.onStdout)
    child.stderr.on('data', options.onStderr)
    if (this.pid !== undefined) live.add(this)
    // The leader's exit is not the end: orphans may still hold the pipes open, and 'close'
    // waits for the pipes. Reap the rest of the group so the streams can close.
    child.once('exit', () => {
      if (this.#state === 'running') this.stop(options.graceMs)
    })
    let spawnError: Error | undefined
    // 'error' comes before 'close' when the process cannot start (ENOENT, a missing cwd).
    child.once('error', (error) => (spawnError ??= error))
    this.exited = new Promise<GroupExit>((resolve) => {
      child.once('close', (code, signal) => {
        this.#finish()
        if (spawnError !== undefined && this.pid === undefined) resolve({ exitCode: undefined, signal: undefined, spawnError })
        else resolve({ exitCode: code ?? undefined, signal: signal ?? undefined, spawnError: undefined })
      })
    })
  }

  get state(): GroupState {
    return this.#state
  }

  /** SIGTERM to the group now, SIGKILL after `graceMs` to whatever is left. Idempotent. */
  stop(graceMs: number): void {
    if (this.#state !== 'running' || this.pid === undefined) return
    this.#state = 'stopping'
    if (!signalGroup(this.pid, 'SIGTERM')) return
    const pid = this.pid
    this.#killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs)
    this.#killTimer.unref()
  }

  /** SIGKILL to the group now (force close, troupe exiting). */
  kill(): void {
    if (this.#state === 'exited' || this.pid === undefined) return
    this.#state = 'stopping'
    signalGroup(this.pid, 'SIGKILL')
  }

  #finish(): void {
    // Late orphans that ignored SIGTERM but closed their pipes: make sure of them.
    if (this.pid !== undefined && this.#state !== 'exited') signalGroup(this.pid, 'SIGKILL')
    clearTimeout(this.#killTimer)
    this.#state = 'exited'
    live.delete(this)
  }
}
