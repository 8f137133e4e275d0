import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { processAlive } from '../core/process-alive.ts'

/**
 * Whether a run is still running, for `troupe clean`: a run is live while a live process
 * holds it. The holder's pid is read from the journal's lock file (`<dir>/<runId>/lock`,
 * plain pid or JSON `{ "pid": … }`) when there is one, else from the marker the run's
 * workspaces write (`<dir>/<runId>/worktrees/.owner`). A journal that ends with `run-end`
 * means the run is over, whatever the pid. A recycled pid can make a dead run look live:
 * that errs on the safe side (nothing is removed).
 */
export function isRunLive(checkpointDir: string, runId: string): boolean {
  const pid = holder(checkpointDir, runId)
  return pid !== undefined && processAlive(pid)
}

/** The pid of the live process other than this one that holds the run, if any. */
export function otherHolder(checkpointDir: string, runId: string): number | undefined {
  const pid = holder(checkpointDir, runId)
  return pid !== undefined && pid !== process.pid && processAlive(pid) ? pid : undefined
}

function holder(checkpointDir: string, runId: string): number | undefined {
  const dir = join(checkpointDir, runId)
  if (journalEnded(join(dir, 'journal.jsonl'))) return undefined
  return readPid(join(dir, 'lock')) ?? readPid(ownerFile(join(dir, 'worktrees')))
}

/** The marker naming the process that uses a run's worktrees. */
export function ownerFile(worktreesDir: string): string {
  return join(worktreesDir, '.owner')
}

/** Marks this process as the user of the worktrees in `worktreesDir`. */
export function markOwner(worktreesDir: string): void {
  writeFileSync(ownerFile(worktreesDir), `${process.pid}\n`)
}

/** Removes the marker once the run's worktrees are gone. */
export function clearOwner(worktreesDir: string): void {
  rmSync(ownerFile(worktreesDir), { force: true })
}

function journalEnded(file: string): boolean {
  if (!existsSync(file)) return false
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
  try {
    return (JSON.parse(lines.at(-1) ?? '') as { type?: unknown }).type === 'run-end'
  } catch {
    return false
  }
}

function readPid(file: string): number | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch {
    return undefined
  }
  let pid: unknown = Number(text)
  if (!Number.isSafeInteger(pid)) {
    try {
      pid = (JSON.parse(text) as { pid?: unknown }).pid
    } catch {
      return undefined
    }
  }
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

