/**
 * The supervisor: a small Node process each troupe process starts once (see
 * containment.ts), the entry of its own file. Troupe tells it on stdin which process
 * groups and processes it runs; when troupe's end of the pipe closes — troupe exited,
 * crashed, or was SIGKILLed — it stops them all: SIGTERM, then SIGKILL after the grace
 * period, to the groups, the processes that left them (`setsid`), their descendants, and
 * every process carrying this troupe's tag in its environment. Then it exits.
 *
 * Protocol, one line each: `g PGID START` / `u PGID START` track and forget a group whose
 * leader started at START (clock ticks since boot); `p PID START` / `q PID START` the same for
 * one process. A forget names the start time because it may come late (troupe sends them in
 * batches): it must not forget a newer group or process that got the same id meanwhile.
 *
 *   node supervisor.js TOKEN GRACE_MS
 */
import { createInterface } from 'node:readline'
import { indexProcTable, PROCESS_TAG, signalGroup, signalProcess, taggedProcesses, withDescendants } from './process-tree.ts'

const token = process.argv[2] ?? ''
const graceMs = Number(process.argv[3] ?? 1000)
const groups = new Map<number, number>()
const pids = new Map<number, number>()

// Troupe's end of the pipe decides when to stop: a Ctrl-C or hang-up meant for troupe is not for us.
for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const) process.on(signal, () => {})

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  const [op, a, b] = line.split(' ')
  const id = Number(a)
  if (!Number.isSafeInteger(id) || id <= 0) return
  const start = Number(b)
  if (op === 'g') groups.set(id, start)
  else if (op === 'u' && groups.get(id) === start) groups.delete(id)
  else if (op === 'p') pids.set(id, start)
  else if (op === 'q' && pids.get(id) === start) pids.delete(id)
})
lines.on('close', () => void stopAll())

/** What is left of troupe's processes: groups still safe to signal, and single processes. */
function targets(): { groups: number[]; pids: Set<number> } {
  const procs = indexProcTable()
  const { table, byPid } = procs
  // A group id is safe while no other process has taken its leader's pid (the kernel keeps
  // a pid while it names a group, so a live group is ours unless its leader's pid was reused).
  const safe = [...groups].filter(([pgid, start]) => byPid.get(pgid) === undefined || byPid.get(pgid)!.startTicks === start).map(([pgid]) => pgid)
  const roots: number[] = []
  for (const entry of table) if (safe.includes(entry.pgrp)) roots.push(entry.pid)
  for (const [pid, start] of pids) if (byPid.get(pid)?.startTicks === start) roots.push(pid)
  if (token !== '') for (const entry of taggedProcesses(PROCESS_TAG, `${token}.`, table, true)) roots.push(entry.pid)
  const all = withDescendants(roots, procs)
  all.delete(process.pid)
  return { groups: safe, pids: all }
}

async function stopAll(): Promise<void> {
  for (let round = 0; round < 4; round++) {
    const found = targets()
    if (found.pids.size === 0) break
    const signal = round === 0 ? 'SIGTERM' : 'SIGKILL'
    for (const pgid of found.groups) signalGroup(pgid, signal)
    for (const pid of found.pids) signalProcess(pid, signal)
    await new Promise((resolve) => setTimeout(resolve, round === 0 ? graceMs : 100))
  }
  process.exit(0)
}
