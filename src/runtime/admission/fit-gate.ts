import type { Clock } from '../core/clock.ts'
import { isCliKind } from '../plan/agent-spec.ts'
import type { CompiledTask } from '../plan/plan.ts'
import type { DemandBook } from '../governor/demand.ts'
import { describeHold, fit, liveUnknownCpu, UNKNOWN_CPU, WAITING_CPU, type Headroom } from './fit-policy.ts'
import type { Gate } from './gate.ts'
import type { ResourceReading } from '../governor/governor-policy.ts'

/**
 * What a coding-agent CLI is assumed to use before it is measured: it waits on its model most
 * of the time. Its start-up burst (Claude Code: ~1.6 s of CPU in its first seconds) would make
 * a reading taken then judge it CPU-bound, and hold the next sessions for nothing; its
 * measurements leave the start-up out (ProcessExecutor's warm-up), so what is learnt is the
 * steady state.
 */
const CLI_PRIOR = { cpu: 0.05 }

function kindPrior(task: CompiledTask): { readonly cpu: number } | undefined {
  const kind = task.agentSpec.kind
  return isCliKind(kind) ? CLI_PRIOR : undefined
}

/** Machine CPU at or above which measured shares understate demand. */
const SATURATED_PERCENT = 90
/** How long after an unmeasured agent starts a "CPU-bound" verdict on it is re-checked at the learning pace. */
const RECHECK_MS = 1000

export type HoldReason = 'cpu' | 'memory'

/** A task kept queued because it does not fit (`governor:held`). */
export interface HoldNotice {
  readonly runId: string
  readonly taskId: string
  readonly agent: string
  readonly reason: HoldReason
  readonly message: string
  readonly at: number
}

interface Reservation {
  readonly agent: string
  /** Predicted cores; undefined for an agent troupe had not measured (see liveUnknownCpu). */
  readonly cpu: number | undefined
  readonly startedAt: number
}

/**
 * The governor's admission by fit, as a gate (shared by the runs of a runtime): a ready task
 * starts when its agent's predicted CPU and memory fit the headroom of the latest reading,
 * given what the attempts in flight are predicted to use. Agents never measured are assumed
 * CPU-bound until a reading taken while they ran says otherwise; the first attempt of an
 * agent never seen starts whatever the CPU, so that it gets measured.
 */
export class FitGate implements Gate {
  /** A refusal is the agent's: its predicted CPU or memory does not fit (a cache hit among its tasks waits for the next pass). */
  readonly refusesByAgent = true
  readonly #running = new Map<string, Reservation>()
  /** Reservations of tasks waiting for tasks they spawned: set aside, they use no CPU meanwhile. */
  readonly #suspended = new Map<string, Reservation>()
  #headroom: Headroom
  /** Attempts in flight per agent troupe has not measured. */
  readonly #unknown = new Map<string, number>()
  /**
   * Cores per attempt of each unmeasured agent, seen in the last reading taken while it ran
   * (see liveUnknownCpu): further attempts of that agent are admitted by it without waiting
   * for a new reading, so a plan of 40 sleepers does not start them one reading at a time.
   */
  readonly #live = new Map<string, number>()
  #lastUnknownStartAt = -Infinity
  #lastReadingAt = -Infinity
  readonly #heldMs = { cpu: 0, memory: 0 }
  readonly #heldSince: { cpu?: number; memory?: number } = {}
  #lastNotice = ''
  /** Bumped by every change of what {@link fit} reads here (readings, reservations); with the demand book's version, a refusal's validity. */
  #version = 0
  /**
   * Agents refused, with the versions they were refused at: until either moves, their other
   * ready tasks get the same answer without working it out again. A scan of thousands of ready
   * tasks on a busy machine asked the same question of each (regression: 13k tasks/s fell to ≈ 1k).
   */
  readonly #refused = new Map<string, number>()

  constructor(
    readonly demand: DemandBook,
    readonly clock: Clock,
    limits: { readonly cores: number; readonly memoryMb: number },
    readonly onHold: (notice: HoldNotice) => void,
    /** An attempt of an agent not known to wait started: a reading soon would tell what it uses. */
    readonly onLearning: () => void = () => {},
    /** Tasks that will use no CPU (a task-cache hit: no agent runs): admitted without a reservation. */
    readonly exempt: (runId: string, task: CompiledTask) => boolean = () => false,
  ) {
    this.#headroom = { cores: limits.cores, othersCpu: 0, memoryMb: limits.memoryMb, memoryUsedMb: 0 }
  }

  /**
   * True while some unmeasured agent runs and no reading has judged it yet: sample soon. A
   * "CPU-bound" verdict is checked again for {@link RECHECK_MS} after the last such start:
   * thread starts and module loads are troupe's CPU too, and may be all a first reading saw.
   */
  get learning(): boolean {
    const recent = this.clock.now() - this.#lastUnknownStartAt < RECHECK_MS
    for (const agent of this.#unknown.keys()) {
      const live = this.#live.get(agent)
      if (live === undefined || (recent && live >= WAITING_CPU)) return true
    }
    return false
  }

  /**
   * Whether `agent` is predicted to mostly wait (below {@link WAITING_CPU} cores): measured,
   * declared, or — never measured — seen so in a reading taken while it ran. Such attempts
   * may share a worker thread.
   */
  waits(agent: string): boolean {
    const cpu = this.demand.estimate(agent)?.cpu ?? this.#live.get(agent)
    return cpu !== undefined && cpu < WAITING_CPU
  }

  /** Cores predicted busy by the attempts in flight. */
  get reservedCpu(): number {
    let cpu = 0
    for (const reservation of this.#running.values()) cpu += reservation.cpu ?? this.#live.get(reservation.agent) ?? UNKNOWN_CPU
    return cpu
  }

  /** Takes a reading: the new headroom, and what unmeasured agents really use. */
  observe(reading: ResourceReading, at: number, cpuThrottled = false): void {
    const cores = this.#headroom.cores
    const ownCpu = ((reading.ownCpuPercent ?? 0) / 100) * cores
    const othersCpu = Math.max(0, (reading.cpuPercent / 100) * cores - ownCpu)
    this.#headroom = { ...this.#headroom, othersCpu, memoryUsedMb: reading.memoryUsedMb, cpuThrottled }
    this.#version++
    // The reading's window began at the previous one: it says something about the unmeasured
    // attempts only if they all ran for the whole of it. Their CPU together is all it tells:
    // low, each is low; high, any of them may be the heavy one, so all count as heavy.
    if (this.#unknown.size > 0 && this.#lastReadingAt >= this.#lastUnknownStartAt) {
      let known = 0
      let unknown = 0
      for (const reservation of this.#running.values()) known += reservation.cpu ?? 0
      for (const attempts of this.#unknown.values()) unknown += attempts
      const each = liveUnknownCpu(ownCpu, known, unknown, reading.cpuPercent >= SATURATED_PERCENT)
      for (const agent of this.#unknown.keys()) this.#live.set(agent, each)
    }
    this.#lastReadingAt = at
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    // Nothing reserved: release() finds no reservation and does nothing.
    if (this.exempt(runId, task)) return true
    this.demand.seed(task.agent, (task.spec as { resources?: unknown }).resources ?? kindPrior(task))
    const version = this.#version + this.demand.version
    if (this.#refused.get(task.agent) === version) return false
    const estimate = this.demand.estimate(task.agent)
    // An agent never seen gets one attempt, even on busy cores: otherwise agents that wait
    // would queue behind CPU-bound ones until those are all done, never measured.
    const probe = estimate === undefined && !this.#live.has(task.agent) && !this.#unknown.has(task.agent)
    const cpu = probe ? 0 : (estimate?.cpu ?? this.#live.get(task.agent) ?? UNKNOWN_CPU)
    const verdict = fit(this.#headroom, { attempts: this.#running.size, cpu: this.reservedCpu }, cpu, estimate?.memoryMb)
    const now = this.clock.now()
    if (!verdict.fits) {
      this.#refused.set(task.agent, version)
      this.#heldSince[verdict.reason] ??= now
      const message = describeHold(task.agent, verdict)
      if (message !== this.#lastNotice) {
        this.#lastNotice = message
        this.onHold({ runId, taskId: task.id, agent: task.agent, reason: verdict.reason, message, at: now })
      }
      return false
    }
    this.#endHolds(now)
    if (estimate === undefined) {
      this.#unknown.set(task.agent, (this.#unknown.get(task.agent) ?? 0) + 1)
      this.#lastUnknownStartAt = now
      if (this.learning) this.onLearning()
    }
    this.#running.set(keyOf(runId, task.id), { agent: task.agent, cpu: estimate?.cpu, startedAt: now })
    this.#version++
    return true
  }

  release(runId: string, task: CompiledTask): void {
    const key = keyOf(runId, task.id)
    const reservation = this.#running.get(key)
    if (reservation === undefined) return
    this.#running.delete(key)
    this.#version++
    if (reservation.cpu === undefined) this.#countUnknown(reservation.agent, -1)
    if (this.#running.size === 0) this.#endHolds(this.clock.now())
  }

  /**
   * The task waits for tasks it spawned, using no CPU: its reservation is set aside, so that
   * it cannot hold back the very tasks it waits for (a deadlock on a busy machine).
   */
  suspend(runId: string, task: CompiledTask): boolean {
    const key = keyOf(runId, task.id)
    const reservation = this.#running.get(key)
    if (reservation === undefined) return false
    this.#running.delete(key)
    this.#version++
    if (reservation.cpu === undefined) this.#countUnknown(reservation.agent, -1)
    this.#suspended.set(key, reservation)
    if (this.#running.size === 0) this.#endHolds(this.clock.now())
    return true
  }

  /** The attempt ended while waiting: its set-aside reservation goes. */
  releaseSuspended(runId: string, task: CompiledTask): void {
    this.#suspended.delete(keyOf(runId, task.id))
    if (this.#running.size === 0) this.#endHolds(this.clock.now())
  }

  /** The waiting is over: the reservation comes back (the task was admitted once; it goes on). */
  resume(runId: string, task: CompiledTask): boolean {
    const key = keyOf(runId, task.id)
    const reservation = this.#suspended.get(key)
    if (reservation === undefined) return true
    this.#suspended.delete(key)
    this.#running.set(key, reservation)
    this.#version++
    if (reservation.cpu === undefined) this.#countUnknown(reservation.agent, 1)
    return true
  }

  #countUnknown(agent: string, delta: 1 | -1): void {
    const left = (this.#unknown.get(agent) ?? 0) + delta
    if (left > 0) this.#unknown.set(agent, left)
    else this.#unknown.delete(agent)
  }

  /** Time tasks were held for each reason, up to now. */
  heldMs(): { cpu: number; memory: number } {
    const now = this.clock.now()
    const open = (reason: HoldReason) => (this.#heldSince[reason] === undefined ? 0 : now - this.#heldSince[reason]!)
    return { cpu: this.#heldMs.cpu + open('cpu'), memory: this.#heldMs.memory + open('memory') }
  }

  #endHolds(now: number): void {
    for (const reason of ['cpu', 'memory'] as const) {
      const since = this.#heldSince[reason]
      if (since === undefined) continue
      this.#heldMs[reason] += now - since
      delete this.#heldSince[reason]
    }
    this.#lastNotice = ''
  }
}

function keyOf(runId: string, taskId: string): string {
  return `${runId}\u0000${taskId}`
}
