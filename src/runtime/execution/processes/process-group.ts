import { execa } from 'execa'
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
  /** Written to the process's stdin, which is then closed (else stdin is /dev/null). */
  readonly input?: string
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
    const child = execa(file, args, {
      cwd: options.cwd,
      env: options.env,
      extendEnv: false,
      detached: true,
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      buffer: false,
      reject: false,
      // We signal the whole group ourselves; execa's cleanup would only reach the leader.
      cleanup: false,
      forceKillAfterDelay: false,
      stripFinalNewline: false,
    })
    this.pid = child.pid
    child.stdout?.on('data', options.onStdout)
    child.stderr?.on('data', options.onStderr)
    if (this.pid !== undefined) live.add(this)
    // The leader's exit is not the end: orphans may still hold the pipes open, and execa
    // waits for the pipes. Reap the rest of the group so the streams can close.
    child.once('exit', () => {
      if (this.#state === 'running') this.stop(options.graceMs)
    })
    this.exited = child.then(
      (result) => {
        this.#finish()
        const spawnError = result.failed && result.exitCode === undefined && result.signal === undefined ? (result.cause instanceof Error ? result.cause : new Error(result.message)) : undefined
        return { exitCode: result.exitCode, signal: result.signal, spawnError }
      },
      (error: unknown) => {
        this.#finish()
        return { exitCode: undefined, signal: undefined, spawnError: error instanceof Error ? error : new Error(String(error)) }
      },
    )
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
