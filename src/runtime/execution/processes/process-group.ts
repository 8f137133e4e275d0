import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { ProcessOwner } from '../../journal/process-ledger.ts'
import { RUN_DIR_TAG } from '../../journal/process-ledger.ts'
import { contain, nextTag, pidClockBefore, release, sweep, sweepSoon, type Contained } from './containment.ts'
import { readProc, signalGroup } from './process-tree.ts'

/**
 * One OS process started in its own process group (`detached: true`, so its pid is the
 * group id), with everything it starts. The group is signalled as a whole: on Node no
 * library kills grandchildren, so a `sh -c 'sleep 100 & sleep 100'` would otherwise leave
 * orphans behind. Descendants that leave the group (`setsid`) are tracked too, and the
 * supervisor stops all of it if troupe dies (see containment.ts). Invariant: once `exited`
 * settles, no process of the group is left — whatever survived the leader (background
 * jobs, daemons, `setsid` children) got SIGTERM, then SIGKILL.
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
  /** The attempt it belongs to: recorded in the run's process ledger, tagged in its environment. */
  readonly owner?: ProcessOwner
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
  #contained: Contained | undefined
  /** The sweep at the leader's exit found the group empty (a fact about that moment, not a lifecycle state). */
  #emptied = false

  constructor(file: string, args: readonly string[], options: SpawnOptions) {
    installExitHook()
    const tag = nextTag()
    const env: Record<string, string> = { ...options.env, [tag.name]: tag.value }
    if (options.owner?.runDir !== undefined) env[RUN_DIR_TAG] = options.owner.runDir
    // Before the spawn: the sweep at the leader's exit reads /proc only for pids given out after it.
    const clock = pidClockBefore()
    // node:child_process directly, not execa: nothing of execa's is used here (no buffering, no
    // promise, our own group signalling), and loading it cost a `command` run ~100 ms of start-up.
    const child = spawn(file, args, {
      cwd: options.cwd,
      env,
      detached: true,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    if (options.input !== undefined && child.stdin !== null) {
      // A process that exits without reading its stdin makes the write fail with EPIPE: not our error.
      child.stdin.on('error', () => undefined)
      child.stdin.end(options.input)
    }
    this.pid = child.pid
    child.stdout?.on('data', options.onStdout)
    child.stderr?.on('data', options.onStderr)
    if (this.pid !== undefined) {
      live.add(this)
      // Read at once: the leader has not exec'd anything yet that could exit before us.
      const leader = readProc(this.pid)
      if (leader !== undefined) this.#contained = contain(this.pid, leader.startTicks, tag.value, options.owner, clock)
    }
    // The leader's exit is not the end: orphans may still hold the pipes open, and 'close'
    // waits for the pipes. Reap the rest of the group so the streams can close.
    let afterExit: Promise<void> | undefined
    child.once('exit', () => {
      if (this.#state === 'running') afterExit = this.#stopAfterExit(options.graceMs)
    })
    let spawnError: Error | undefined
    // 'error' comes before 'close' when the process cannot start (ENOENT, a missing cwd).
    child.once('error', (error) => (spawnError ??= spawnFailure(error, options.cwd)))
    this.exited = new Promise<GroupExit>((resolve) => {
      child.once('close', (code, signal) => {
        const settle = () => {
          this.#finish()
          if (spawnError !== undefined && this.pid === undefined) resolve({ exitCode: undefined, signal: undefined, spawnError })
          else resolve({ exitCode: code ?? undefined, signal: signal ?? undefined, spawnError: undefined })
        }
        // The sweep at the leader's exit may still be queued ('close' can come in the same turn): it decides #finish's.
        if (afterExit === undefined) settle()
        else void afterExit.then(settle)
      })
    })
  }

  get state(): GroupState {
    return this.#state
  }

  /** SIGTERM to the group and its escaped descendants now, SIGKILL after `graceMs` to whatever is left. Idempotent. */
  stop(graceMs: number): void {
    if (this.#state !== 'running' || this.pid === undefined) return
    this.#state = 'stopping'
    if (!this.#signal('SIGTERM')) return
    this.#killTimer = setTimeout(() => this.#signal('SIGKILL'), graceMs)
    this.#killTimer.unref()
  }

  /**
   * {@link stop} at the leader's exit, with the sweep batched with the other exits of this turn
   * of the event loop (containment.ts sweepSoon): it is on the way from a slot's exit to its
   * next spawn, and each sweep alone reads all of /proc.
   */
  async #stopAfterExit(graceMs: number): Promise<void> {
    if (this.pid === undefined) return
    this.#state = 'stopping'
    const signalled = this.#contained !== undefined ? await sweepSoon(this.#contained, 'SIGTERM') : signalGroup(this.pid, 'SIGTERM')
    // That sweep found no process of the group, escaped or tagged, left: none is left to start
    // one, so 'close' needs no second sweep.
    if (!signalled) this.#emptied = true
    else if (this.#state === 'stopping') {
      this.#killTimer = setTimeout(() => this.#signal('SIGKILL'), graceMs)
      this.#killTimer.unref()
    }
  }

  /** SIGKILL to the group and its escaped descendants now (force close, troupe exiting). */
  kill(): void {
    if (this.#state === 'exited' || this.pid === undefined) return
    this.#state = 'stopping'
    this.#signal('SIGKILL')
  }

  #signal(signal: NodeJS.Signals): boolean {
    return this.#contained !== undefined ? sweep(this.#contained, signal) : this.pid !== undefined && signalGroup(this.pid, signal)
  }

  #finish(): void {
    // Late orphans that ignored SIGTERM but closed their pipes: make sure of them.
    if (this.pid !== undefined && this.#state !== 'exited' && !this.#emptied) this.#signal('SIGKILL')
    clearTimeout(this.#killTimer)
    this.#state = 'exited'
    live.delete(this)
    if (this.#contained !== undefined) release(this.#contained)
  }
}

/** Node reports a missing cwd as `spawn FILE ENOENT`, as if FILE were missing: say which it is. */
function spawnFailure(error: Error, cwd: string): Error {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || existsSync(cwd)) return error
  return new Error(`its working directory ${cwd} does not exist`, { cause: error })
}

