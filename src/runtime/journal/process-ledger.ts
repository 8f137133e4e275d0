import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  environValue,
  indexProcTable,
  isAlive,
  PROCESS_TAG,
  readProcTable,
  selfAndAncestors,
  signalGroup,
  signalProcess,
  tagOwner,
  taggedProcesses,
  withDescendants,
  type ProcessIdentity,
} from '../execution/processes/process-tree.ts'
import { seal, unseal } from './integrity.ts'

/**
 * The process ledger of a run: `<runDir>/processes.jsonl`, beside the journal and sealed
 * the same way (integrity.ts). Every process group an attempt starts, and every
 * descendant found outside its group, is recorded with its start time as it is found,
 * synchronously (a SIGKILL right after loses nothing). Resume and `troupe clean` read it
 * to kill what an earlier, killed invocation left running ({@link stopLeftovers}) before
 * anything runs again; the start time keeps a reused pid from being mistaken for one.
 */

export const PROCESSES_FILE = 'processes.jsonl'
/** The environment variable naming the run directory of the attempt that started a process. */
export const RUN_DIR_TAG = 'TROUPE_RUN_DIR'

/** Whose a process is: the run (by its directory), the task and the attempt. */
export interface ProcessOwner {
  /** The run's directory; nothing is recorded without one (no journal, or a remote worker's). */
  readonly runDir: string | undefined
  readonly taskId: string
  readonly attempt: number
}

export interface ProcessRecord {
  readonly task: string
  readonly attempt: number
  readonly pid: number
  /** Start time, in clock ticks since boot (`/proc/<pid>/stat` field 22). */
  readonly start: number
  /** The pid leads a process group that troupe started (signal the whole group). */
  readonly group: boolean
  /** The troupe process that started it (pid, start ticks): while that one lives, the process is its to stop, not a leftover. */
  readonly owner?: number
  readonly ownerStart?: number
}

/** Next sequence number per ledger file this process appends to. */
const sequences = new Map<string, number>()

/** Appends one process to its run's ledger. Never throws: the ledger is a safety net, not a gate. */
export function recordProcess(owner: ProcessOwner, process: { readonly pid: number; readonly startTicks: number; readonly group: boolean }, troupe?: ProcessIdentity): void {
  if (owner.runDir === undefined || !existsSync(owner.runDir)) return
  const file = join(owner.runDir, PROCESSES_FILE)
  try {
    const seq = sequences.get(file) ?? readLedger(file).length + 1
    const record: ProcessRecord = {
      task: owner.taskId,
      attempt: owner.attempt,
      pid: process.pid,
      start: process.startTicks,
      group: process.group,
      ...(troupe === undefined ? {} : { owner: troupe.pid, ownerStart: troupe.startTicks }),
    }
    appendFileSync(file, `${seal(seq, JSON.stringify(record))}\n`)
    sequences.set(file, seq + 1)
  } catch {
    // A full disk: the supervisor and the environment tag still contain the process.
  }
}

/** The ledger's records; lines that fail their seal are skipped (a torn or damaged line names nothing safe to kill). */
export function readLedger(file: string): ProcessRecord[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  const out: ProcessRecord[] = []
  for (const line of text.split('\n')) {
    if (line === '' || 'problem' in unseal(line)) continue
    const { task, attempt, pid, start, group, owner, ownerStart } = JSON.parse(line) as ProcessRecord
    out.push({ task, attempt, pid, start, group, ...(owner === undefined ? {} : { owner, ownerStart }) })
  }
  return out
}

/**
 * Kills what earlier invocations of the run in `runDir` left running — the processes in
 * its ledger that still live (same pid and start time), their groups and descendants, and
 * every process whose environment names the run directory — and waits until they are gone
 * (up to `waitMs`). Then the ledger is emptied. Returns how many processes were killed.
 *
 * Spared: processes whose troupe process still lives (another one than this: a `troupe
 * worker` on this machine running an attempt of the run, which a resumed coordinator adopts).
 */
export async function stopLeftovers(runDir: string, waitMs = 5_000): Promise<number> {
  const file = join(runDir, PROCESSES_FILE)
  const records = readLedger(file)
  const procs = indexProcTable()
  const { table, byPid } = procs
  const roots: number[] = []
  const groups: number[] = []
  const ownerLives = (owner: ProcessIdentity | undefined) => owner !== undefined && owner.pid !== process.pid && isAlive(owner)
  for (const record of records) {
    const entry = byPid.get(record.pid)
    if (entry === undefined || entry.startTicks !== record.start) continue
    if (record.owner !== undefined && ownerLives({ pid: record.owner, startTicks: record.ownerStart ?? 0 })) continue
    roots.push(record.pid)
    if (record.group && entry.pgrp === record.pid) groups.push(record.pid)
  }
  for (const pgid of groups) for (const entry of procs.groups.get(pgid) ?? []) roots.push(entry.pid)
  for (const entry of taggedProcesses(RUN_DIR_TAG, runDir, table)) {
    const tag = environValue(entry.pid, PROCESS_TAG)
    if (!ownerLives(tag === undefined ? undefined : tagOwner(tag))) roots.push(entry.pid)
  }
  const targets = withDescendants(roots, procs)
  for (const pid of selfAndAncestors(procs)) targets.delete(pid)
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL')
  for (const pid of targets) signalProcess(pid, 'SIGKILL')
  const identities = [...targets].map((pid) => ({ pid, start: byPid.get(pid)?.startTicks }))
  for (const end = Date.now() + waitMs; Date.now() < end; ) {
    const now = new Map(readProcTable().map((entry) => [entry.pid, entry.startTicks]))
    if (identities.every(({ pid, start }) => now.get(pid) !== start)) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  rmSync(file, { force: true })
  sequences.delete(file)
  return targets.size
}
