import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { threadEntryFile } from '../../core/worker-file.ts'
import { recordProcess, type ProcessOwner } from '../../journal/process-ledger.ts'
import { watchProcs } from './proc-watch.ts'
import {
  indexProcTable,
  PROCESS_TAG,
  readNewerProcTable,
  readPidClock,
  readProc,
  selfAndAncestors,
  signalGroup,
  signalProcess,
  tagValues,
  withDescendants,
  type ProcEntry,
  type PidClock,
  type ProcIndex,
  type ProcessIdentity,
} from './process-tree.ts'

/**
 * Containment: no process troupe starts outlives it, however it ends.
 *
 * - Each process group troupe starts is registered here ({@link contain}): its leader's
 *   identity (pid + start time) goes to the supervisor (supervisor.ts, one per troupe
 *   process), which stops everything it knows when troupe's end of its pipe closes — also
 *   when troupe is SIGKILLed — and, for a run with a journal, to the run's process ledger
 *   (process-ledger.ts), which resume and `troupe clean` use to kill leftovers first.
 * - Every such process gets `TROUPE_PROCESS_TAG=<token>.<n>` in its environment, inherited
 *   by what it starts: descendants that leave the group (`setsid`) and lose their parent
 *   are still found by it.
 * - Descendants that leave the group are also captured by parent pid every
 *   {@link CAPTURE_INTERVAL_MS} (for those that clear their environment), and again when
 *   the group is stopped ({@link sweep}).
 */

/** How often live groups are scanned for descendants that left them. */
const CAPTURE_INTERVAL_MS = 500
/** What the supervisor gives processes between SIGTERM and SIGKILL once troupe is gone. */
const SUPERVISOR_GRACE_MS = 1_000

/** One contained process group: the group, its leader, and the processes that left it. */
export interface Contained {
  readonly pgid: number
  readonly leader: ProcessIdentity
  /** The value of `TROUPE_PROCESS_TAG` in the group's environment. */
  readonly tag: string
  /** Descendants found outside the group, by pid → start ticks. */
  readonly escaped: Map<number, number>
  readonly owner: ProcessOwner | undefined
  /** The pid clock read before the leader was started: lets the sweep at its exit read only newer processes. */
  readonly clock: PidClock | undefined
}

/** This troupe process, as owner: tags and ledger records name it, so resume spares what a live troupe (a worker) still runs. */
const self: ProcessIdentity = { pid: process.pid, startTicks: readProc(process.pid)?.startTicks ?? 0 }
const token = `${self.pid}-${self.startTicks}-${randomBytes(4).toString('hex')}`
let counter = 0
const live = new Set<Contained>()
let supervisor: ChildProcess | undefined
let unwatch: (() => void) | undefined

/** A fresh `TROUPE_PROCESS_TAG` value for a group about to start. */
export function nextTag(): { readonly name: string; readonly value: string } {
  return { name: PROCESS_TAG, value: `${token}.${++counter}` }
}

/** The last pid clock read, and when (ms). */
let lastClock: { readonly clock: PidClock | undefined; readonly at: number } | undefined

/**
 * A pid clock read before now, for a group about to start (see {@link contain}): an older
 * reading only makes the sweep at its exit more careful (it counts more forks since), so one
 * reading serves the groups started within a second.
 */
export function pidClockBefore(): PidClock | undefined {
  const now = Date.now()
  if (lastClock === undefined || now - lastClock.at >= 1_000) lastClock = { clock: readPidClock(), at: now }
  return lastClock.clock
}

/** Registers a started group: supervisor, ledger, periodic capture. `clock`: from {@link pidClockBefore}, taken before the spawn. */
export function contain(pgid: number, startTicks: number, tag: string, owner: ProcessOwner | undefined, clock?: PidClock): Contained {
  const entry: Contained = { pgid, leader: { pid: pgid, startTicks }, tag, escaped: new Map(), owner, clock }
  live.add(entry)
  tell(`g ${pgid} ${startTicks}`)
  if (owner !== undefined) recordProcess(owner, { pid: pgid, startTicks, group: true }, self)
  unwatch ??= watchProcs(CAPTURE_INTERVAL_MS, capture)
  return entry
}

/** Forgets a group once nothing of it is left. */
export function release(entry: Contained): void {
  if (!live.delete(entry)) return
  forget(`u ${entry.pgid} ${entry.leader.startTicks}`)
  for (const [pid, start] of entry.escaped) forget(`q ${pid} ${start}`)
  if (live.size === 0) {
    unwatch?.()
    unwatch = undefined
  }
}

/**
 * Signals what is left of `entry` — the group, descendants of its members and of its
 * escaped processes, and every process with its tag — from one fresh reading of `/proc`.
 * Returns whether anything was signalled.
 */
export function sweep(entry: Contained, signal: NodeJS.Signals): boolean {
  const procs = indexProcTable()
  const tagged = tagValues(PROCESS_TAG, procs.table, entry.leader.startTicks)
  return sweepWith(entry, signal, procs, tagged, selfAndAncestors(procs))
}

/** Sweeps waiting for the next turn of the event loop, with what each resolves. */
const queued: Array<{ readonly entry: Contained; readonly signal: NodeJS.Signals; readonly done: (signalled: boolean) => void }> = []

/**
 * {@link sweep}, batched: every sweep asked for in one turn of the event loop shares one
 * reading of `/proc` (and one read of each newer process's environment), taken at the end of
 * the turn. For the sweep at a leader's exit: when many short commands end together, one
 * reading each was most of the work between a slot's exit and its next spawn.
 */
export function sweepSoon(entry: Contained, signal: NodeJS.Signals): Promise<boolean> {
  return new Promise((done) => {
    if (queued.push({ entry, signal, done }) === 1) setImmediate(sweepQueued)
  })
}

function sweepQueued(): void {
  const batch = queued.splice(0)
  try {
    // Only the processes started since the oldest leader of the batch: all a sweep of theirs can be after.
    // Not the leaders of the other live groups (when many run, most of those): each leads its own
    // session, so it is neither in a batch group nor a descendant of one, and it carries its own tag.
    const others = new Set<number>()
    for (const entry of live) others.add(entry.pgid)
    for (const { entry } of batch) others.delete(entry.pgid)
    const procs = indexProcTable(readNewerProcTable(batch.map(({ entry }) => ({ pid: entry.pgid, clock: entry.clock })), others))
    const tagged = tagValues(PROCESS_TAG, procs.table, Math.min(...batch.map(({ entry }) => entry.leader.startTicks)))
    const spared = selfAndAncestors(procs)
    for (const { entry, signal, done } of batch) done(sweepWith(entry, signal, procs, tagged, spared))
  } catch {
    // Reading /proc does not throw (unreadable entries are skipped); should it, each sweep runs alone.
    for (const { entry, signal, done } of batch) done(sweep(entry, signal))
  }
}

/** One sweep from a given reading: `tagged` maps tag values to the processes carrying them, `spared` is never signalled. */
function sweepWith(
  entry: Contained,
  signal: NodeJS.Signals,
  procs: ProcIndex,
  tagged: ReadonlyMap<string, readonly ProcEntry[]>,
  spared: ReadonlySet<number>,
): boolean {
  // The group id is ours unless its leader's pid now names another process (see supervisor.ts).
  const leader = procs.byPid.get(entry.pgid)
  const groupIsOurs = leader === undefined || leader.startTicks === entry.leader.startTicks
  const roots = groupIsOurs ? groupRoots(entry, procs) : liveEscaped(entry, procs)
  // A descendant never starts before its ancestor: an older process carrying the tag is not of this group.
  for (const process of tagged.get(entry.tag) ?? []) if (process.startTicks >= entry.leader.startTicks) roots.push(process.pid)
  const targets = withDescendants(roots, procs)
  for (const pid of spared) targets.delete(pid)
  let signalled = groupIsOurs && signalGroup(entry.pgid, signal)
  // Members are signalled one by one too: one that calls setsid() between the reading and the
  // group's signal has left the group by then (regression: a setsid orphan of one of several
  // leaders exiting together was not signalled, seen once in CI on Node 22).
  for (const pid of targets) signalled = signalProcess(pid, signal) || signalled
  return signalled
}

/** Records the descendants of live groups that left them (setsid, setpgid), from the tick's one reading of `/proc`. */
function capture(procs: ProcIndex): void {
  for (const entry of live) {
    for (const pid of withDescendants(groupRoots(entry, procs), procs)) {
      const process = procs.byPid.get(pid)
      if (process === undefined || process.pgrp === entry.pgid || entry.escaped.has(pid)) continue
      escaped(entry, process)
    }
  }
}

/** The group's members, then its escaped processes that still live (same pid, same start time). */
function groupRoots(entry: Contained, procs: ProcIndex): number[] {
  const members = (procs.groups.get(entry.pgid) ?? []).map((process) => process.pid)
  return [...members, ...liveEscaped(entry, procs)]
}

function liveEscaped(entry: Contained, procs: ProcIndex): number[] {
  const out: number[] = []
  for (const [pid, start] of entry.escaped) if (procs.byPid.get(pid)?.startTicks === start) out.push(pid)
  return out
}

function escaped(entry: Contained, process: ProcEntry): void {
  entry.escaped.set(process.pid, process.startTicks)
  tell(`p ${process.pid} ${process.startTicks}`)
  if (entry.owner !== undefined) recordProcess(entry.owner, { pid: process.pid, startTicks: process.startTicks, group: false }, self)
}

/** `u`/`q` lines not sent yet: sent together at the end of the turn of the event loop. */
let forgotten: string[] = []

/**
 * Tells the supervisor to forget a group or process, with the others forgotten in this turn:
 * one write for all the groups that end together. A late forget is harmless: it names the
 * start time too, so it cannot forget a newer process that got the same pid meanwhile.
 */
function forget(line: string): void {
  if (forgotten.push(line) > 1) return
  setImmediate(() => {
    const lines = forgotten
    forgotten = []
    if (supervisor?.stdin?.writable) supervisor.stdin.write(`${lines.join('\n')}\n`)
  })
}

/** Sends one line to the supervisor, starting it (again) first when needed. */
function tell(line: string): void {
  const child = supervisor ?? startSupervisor()
  if (child?.stdin?.writable) child.stdin.write(`${line}\n`)
}

function startSupervisor(): ChildProcess | undefined {
  let child: ChildProcess
  try {
    const file = threadEntryFile(import.meta.url, 'supervisor', ['supervisor.ts', 'process-tree.ts'])
    // Detached: a Ctrl-C to troupe's terminal group must not stop it before troupe is done.
    child = spawn(process.execPath, [file, token, String(SUPERVISOR_GRACE_MS)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true, env: {} })
  } catch {
    return undefined
  }
  supervisor = child
  child.unref()
  const stdin = child.stdin as (NodeJS.WritableStream & { unref?: () => void; on: NodeJS.WritableStream['on'] }) | null
  stdin?.unref?.()
  stdin?.on('error', () => undefined)
  child.once('exit', () => {
    if (supervisor === child) supervisor = undefined
  })
  child.once('error', () => {
    if (supervisor === child) supervisor = undefined
  })
  // A new supervisor (the last one was killed) learns everything still running.
  for (const entry of live) {
    child.stdin?.write(`g ${entry.pgid} ${entry.leader.startTicks}\n`)
    for (const [pid, start] of entry.escaped) child.stdin?.write(`p ${pid} ${start}\n`)
  }
  return child
}
