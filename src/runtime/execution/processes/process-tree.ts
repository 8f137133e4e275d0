import { readdirSync, readFileSync } from 'node:fs'

/**
 * What `/proc` says about the processes on this machine (Linux). Process agents are
 * tracked by process group: every descendant of an attempt's process stays in its group
 * unless it calls setsid/setpgid itself.
 */

/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100
const PAGE_BYTES = 4096

export interface ProcEntry {
  readonly pid: number
  readonly pgrp: number
  readonly state: string
  /** utime + stime + cutime + cstime, in ms (includes children already reaped by it). */
  readonly cpuMs: number
  readonly rssBytes: number
}

/** Reads one process's `/proc/<pid>/stat`, or undefined when it is gone. */
export function readProc(pid: number): ProcEntry | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const num = (i: number) => Number(fields[i] ?? 0)
  const ticks = num(11) + num(12) + num(13) + num(14)
  return { pid, pgrp: num(2), state: fields[0] ?? '?', cpuMs: (ticks * 1000) / TICKS_PER_SECOND, rssBytes: num(21) * PAGE_BYTES }
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

/** The live (non-zombie) members of a process group. */
export function groupMembers(pgid: number, table: readonly ProcEntry[] = readProcTable()): ProcEntry[] {
  return table.filter((entry) => entry.pgrp === pgid)
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
