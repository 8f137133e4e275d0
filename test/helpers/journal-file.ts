import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface JournalLine {
  readonly type: string
  readonly id?: string
  readonly state?: string
  readonly status?: string
}

/** The records of `<dir>/.troupe/<runId>/journal.jsonl` as a test reads them (a torn last line is skipped). */
export function journalLines(dir: string, runId: string): JournalLine[] {
  const file = join(dir, '.troupe', runId, 'journal.jsonl')
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as JournalLine]
      } catch {
        return []
      }
    })
}

/** Ids of the tasks the journal records as COMPLETED. */
export function completedIn(dir: string, runId: string): string[] {
  return journalLines(dir, runId).filter((r) => r.type === 'task' && r.state === 'COMPLETED').map((r) => r.id!)
}

/** Polls `condition` every 25 ms; throws naming `what` after `limitMs`. */
export async function until(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const end = Date.now() + limitMs
  while (!condition()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Resolves with a child's exit signal, else its exit code. */
export const exited = (child: ChildProcess) => new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
