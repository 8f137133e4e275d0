import { closeSync, openSync, readdirSync, readSync } from 'node:fs'

/**
 * What `/proc` says about the processes on this machine (Linux). Process agents are
 * tracked by process group: every descendant of an attempt's process stays in its group
 * unless it calls setsid/setpgid itself. Those that leave are found by their parent
 * (`ppid`) while it lives, and by the tag troupe puts in every agent's environment
 * (`TROUPE_PROCESS_TAG`), which children inherit even when their parent is gone.
 */

/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100
const PAGE_BYTES = 4096

/** The environment variable that tags every process troupe starts, and what they start. */
export const PROCESS_TAG = 'TROUPE_PROCESS_TAG'

export interface ProcEntry {
  readonly pid: number
  readonly ppid: number
  readonly pgrp: number
  readonly state: string
  /** When the process started, in clock ticks since boot: with the pid, its identity (pids are reused). */
  readonly startTicks: number
  /** utime + stime + cutime + cstime, in ms (includes children already reaped by it). */
  readonly cpuMs: number
  readonly rssBytes: number
}

/** A process as the journal and the supervisor know it: pid and start time (pids are reused). */
export interface ProcessIdentity {
  readonly pid: number
  readonly startTicks: number
}

/** Where `/proc` files are read into: grown when one does not fit, reused by every read (a walk reads hundreds). */
let scratch = Buffer.allocUnsafe(16 * 1024)

/**
 * The content of `/proc/<pid>/<name>` (`/proc/<name>` for pid `''`), or undefined when it
 * cannot be read (the process is gone, or not ours). A view of a shared buffer, valid until the next call: open, read, close
 * and no more — readFileSync adds an fstat and a buffer per file, and a walk of `/proc`
 * reads a file per process.
 */
function readProcFile(pid: number | string, name: string): Buffer | undefined {
  let fd: number
  try {
    fd = openSync(pid === '' ? `/proc/${name}` : `/proc/${pid}/${name}`, 'r')
  } catch {
    return undefined
  }
  try {
    let length = 0
    for (;;) {
      if (length === scratch.length) {
        const grown = Buffer.allocUnsafe(scratch.length * 2)
        scratch.copy(grown, 0, 0, length)
        scratch = grown
      }
      const read = readSync(fd, scratch, length, scratch.length - length, null)
      if (read === 0) return scratch.subarray(0, length)
      length += read
    }
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/** Reads one process's `/proc/<pid>/stat`, or undefined when it is gone. */
export function readProc(pid: number): ProcEntry | undefined {
  const bytes = readProcFile(pid, 'stat')
  if (bytes === undefined) return undefined
  // The fields used are ASCII; the command name, which may not be, is skipped.
  const stat = bytes.toString('latin1')
  // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const num = (i: number) => Number(fields[i] ?? 0)
  const ticks = num(11) + num(12) + num(13) + num(14)
  return {
    pid,
    ppid: num(1),
    pgrp: num(2),
    state: fields[0] ?? '?',
    startTicks: num(19),
    cpuMs: (ticks * 1000) / TICKS_PER_SECOND,
    rssBytes: num(21) * PAGE_BYTES,
  }
}

/** Whether `identity` still names a live process (same pid, same start time, not a zombie). */
export function isAlive(identity: ProcessIdentity): boolean {
  const entry = readProc(identity.pid)
  return entry !== undefined && entry.startTicks === identity.startTicks && entry.state !== 'Z'
}

/** Every live process (zombies excluded: they hold no resources and cannot be signalled away). */
export function readProcTable(): ProcEntry[] {
  const out: ProcEntry[] = []
  let names: string[]
  try {
    names = readdirSync('/proc')
  } catch {
    return out
  }
  for (const name of names) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid <= 0) continue
    const entry = readProc(pid)
    if (entry !== undefined && entry.state !== 'Z') out.push(entry)
  }
  return out
}

/**
 * Where the kernel's pid allocation stands: the last pid given out in this pid namespace
 * (`/proc/loadavg`) and the processes and threads created since boot (`/proc/stat`).
 * Pids are given out in increasing order, wrapping at `pid_max`: a process started after a
 * pid P was given out has a pid in the cyclic interval (P, lastPid] — as long as fewer than
 * `pid_max` pids were given out since, which the fork count bounds.
 */
export interface PidClock {
  readonly lastPid: number
  readonly forks: number
}

/** Reads the pid clock, or undefined where `/proc` does not have it. */
export function readPidClock(): PidClock | undefined {
  const loadavg = readProcFile('', 'loadavg')?.toString('latin1')
  const lastPid = Number(loadavg?.trim().split(' ')[4])
  const stat = readProcFile('', 'stat')?.toString('latin1')
  const forks = Number(/\nprocesses (\d+)/.exec(stat ?? '')?.[1])
  return Number.isSafeInteger(lastPid) && lastPid > 0 && Number.isSafeInteger(forks) && forks > 0 ? { lastPid, forks } : undefined
}

let pidMax: number | undefined

/** `/proc/sys/kernel/pid_max` (read once; 32768 where it cannot be read, the kernel's smallest default). */
function readPidMax(): number {
  pidMax ??= Number(readProcFile('sys/kernel', 'pid_max')?.toString('latin1').trim()) || 32_768
  return pidMax
}

/** A process group's leader as a narrowed reading needs it: its pid, and the pid clock read before it was started. */
export interface NewerThan {
  readonly pid: number
  readonly clock: PidClock | undefined
}

/**
 * The live processes started at or after the newest of `leaders` was given its pid — every
 * process a sweep of their groups can be after (members, descendants and tagged processes
 * all start after their leader) — reading `/proc/<pid>/stat` only for the pids given out
 * since (see {@link PidClock}), not for every process on the machine. Undefined when that
 * cannot be told (no clock, or so many forks since a leader that pids may have wrapped
 * around): read the whole table then. Processes whose pid was given out before a wrap may
 * be included too; callers filter by start time where it matters, as they do on a full reading.
 * `skip`: pids not to read, known to be none of the leaders' (the leaders of troupe's other live groups).
 */
export function readNewerProcTable(leaders: readonly NewerThan[], skip: ReadonlySet<number> = new Set()): ProcEntry[] | undefined {
  let names: string[]
  try {
    names = readdirSync('/proc')
  } catch {
    return undefined
  }
  // Read after the listing: every process listed was given its pid before this clock's lastPid.
  const now = readPidClock()
  if (now === undefined) return undefined
  const max = readPidMax()
  let span = 0
  for (const leader of leaders) {
    // Half of pid_max leaves a margin for the pids the kernel reserves and skips.
    if (leader.clock === undefined || now.forks - leader.clock.forks >= max / 2) return undefined
    // The leader started after its clock was read, so its pid lies between that clock's last pid
    // and today's: where it does not, /proc/loadavg does not count pids this way (a sandbox's).
    const after = (leader.pid - leader.clock.lastPid + max) % max
    if (after === 0 || after > (now.lastPid - leader.clock.lastPid + max) % max) return undefined
    span = Math.max(span, (now.lastPid - leader.pid + max) % max)
  }
  const out: ProcEntry[] = []
  for (const name of names) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid <= 0 || (now.lastPid - pid + max) % max > span || skip.has(pid)) continue
    const entry = readProc(pid)
    if (entry !== undefined && entry.state !== 'Z') out.push(entry)
  }
  return out
}

/**
 * One reading of `/proc`, indexed once: every question a sweep or a tick asks of it (which
 * processes a group has, what descends from them, who the parent is) is a lookup, however
 * many groups ask.
 */
export interface ProcIndex {
  readonly table: readonly ProcEntry[]
  readonly byPid: ReadonlyMap<number, ProcEntry>
  /** Live pids by parent pid. */
  readonly children: ReadonlyMap<number, readonly number[]>
  /** Live members by process group. */
  readonly groups: ReadonlyMap<number, readonly ProcEntry[]>
}

/** Indexes one reading of the process table (a fresh one unless given). */
export function indexProcTable(table: readonly ProcEntry[] = readProcTable()): ProcIndex {
  const byPid = new Map<number, ProcEntry>()
  const children = new Map<number, number[]>()
  const groups = new Map<number, ProcEntry[]>()
  for (const entry of table) {
    byPid.set(entry.pid, entry)
    const siblings = children.get(entry.ppid)
    if (siblings === undefined) children.set(entry.ppid, [entry.pid])
    else siblings.push(entry.pid)
    const members = groups.get(entry.pgrp)
    if (members === undefined) groups.set(entry.pgrp, [entry])
    else members.push(entry)
  }
  return { table, byPid, children, groups }
}

/** `roots` and every live descendant of them (by parent pid), from one reading of the table. */
export function withDescendants(roots: Iterable<number>, procs: ProcIndex): Set<number> {
  const out = new Set<number>()
  const stack = [...roots]
  while (stack.length > 0) {
    const pid = stack.pop()!
    if (out.has(pid)) continue
    out.add(pid)
    for (const child of procs.children.get(pid) ?? []) stack.push(child)
  }
  return out
}

/**
 * The live processes whose environment holds `name=value` (or, with `prefix`, a value
 * starting with `value`), among those started at or after `sinceTicks` (a descendant never
 * starts before its ancestor: the older processes' environments need not be read). Only
 * this user's processes can be read; others are skipped.
 */
export function taggedProcesses(name: string, value: string, table: readonly ProcEntry[], prefix = false, sinceTicks = 0): ProcEntry[] {
  const wanted = `${name}=${value}`
  const out: ProcEntry[] = []
  for (const entry of table) {
    if (entry.startTicks < sinceTicks) continue
    const environ = readProcFile(entry.pid, 'environ')?.toString('latin1')
    if (environ === undefined) continue
    for (const item of environ.split('\0')) {
      if (prefix ? item.startsWith(wanted) : item === wanted) {
        out.push(entry)
        break
      }
    }
  }
  return out
}

/**
 * The live processes started at or after `sinceTicks` whose environment has `name`, by its
 * value: one read of each environment answers for every tag asked about at once (a batched
 * sweep, see containment.ts). Only this user's processes can be read; others are skipped.
 */
export function tagValues(name: string, table: readonly ProcEntry[], sinceTicks = 0): Map<string, ProcEntry[]> {
  // Searched in the bytes, not decoded and split: most environments do not have it.
  const marker = Buffer.from(`\0${name}=`, 'latin1')
  const out = new Map<string, ProcEntry[]>()
  for (const entry of table) {
    if (entry.startTicks < sinceTicks) continue
    const environ = readProcFile(entry.pid, 'environ')
    if (environ === undefined) continue
    // Where each `name=` value starts; the first variable has no NUL before it.
    const starts: number[] = environ.subarray(0, marker.length - 1).equals(marker.subarray(1)) ? [marker.length - 1] : []
    for (let at = environ.indexOf(marker); at >= 0; at = environ.indexOf(marker, at + 1)) starts.push(at + marker.length)
    for (const start of starts) {
      const end = environ.indexOf(0, start)
      const value = environ.toString('latin1', start, end < 0 ? environ.length : end)
      const carriers = out.get(value)
      if (carriers === undefined) out.set(value, [entry])
      else if (!carriers.includes(entry)) carriers.push(entry)
    }
  }
  return out
}

/** This process and its ancestors: never signalled by a sweep, whatever their environment says. */
export function selfAndAncestors(procs: ProcIndex): Set<number> {
  const out = new Set<number>()
  for (let pid = process.pid; pid > 0 && !out.has(pid); pid = procs.byPid.get(pid)?.ppid ?? 0) out.add(pid)
  return out
}

/** Sends `signal` to every process of the group; false when the group is already empty. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/** Sends `signal` to one process; false when it is gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * The troupe process that started a tagged process: `TROUPE_PROCESS_TAG` values are
 * `<pid>-<startTicks>-<random>.<n>` (see containment.ts). Undefined for another shape.
 */
export function tagOwner(value: string): ProcessIdentity | undefined {
  const match = /^(\d+)-(\d+)-[0-9a-f]+\.\d+$/.exec(value)
  return match === null ? undefined : { pid: Number(match[1]), startTicks: Number(match[2]) }
}

/** The value of `name` in a process's environment, if it can be read and has one. */
export function environValue(pid: number, name: string): string | undefined {
  const environ = readProcFile(pid, 'environ')?.toString('latin1')
  if (environ === undefined) return undefined
  const prefix = `${name}=`
  return environ.split('\0').find((item) => item.startsWith(prefix))?.slice(prefix.length)
}
