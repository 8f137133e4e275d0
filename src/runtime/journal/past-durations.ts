import { existsSync, readdirSync, statSync } from 'node:fs'
import { isRunId, journalFile } from './paths.ts'
import { readJournal } from './reader.ts'

/** Most recent journals read for estimates: enough for a median, bounded for big checkpoint dirs. */
const RUNS_READ = 20

/**
 * What each task of plan `planName` took in earlier journaled runs (COMPLETED, not reused):
 * the median of its `durationMs` (less any time it waited for tasks it spawned) over the most
 * recent {@link RUNS_READ} journals of that plan in `checkpointDir`, by task id. Journals that
 * cannot be read are passed over: estimates are a convenience, never a reason to fail.
 */
export function pastDurations(checkpointDir: string, planName: string): Map<string, number> {
  const samples = new Map<string, number[]>()
  if (!existsSync(checkpointDir)) return new Map()
  const journals = readdirSync(checkpointDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && isRunId(entry.name))
    .map((entry) => journalFile(checkpointDir, entry.name))
    .filter((file) => existsSync(file))
    .map((file) => ({ file, mtime: statSync(file).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime)
  let read = 0
  for (const { file } of journals) {
    if (read >= RUNS_READ) break
    let records
    try {
      records = readJournal(file)?.records
    } catch {
      continue
    }
    if (records === undefined || records[0]?.type !== 'run-start' || records[0].name !== planName) continue
    read++
    for (const record of records) {
      if (record.type !== 'task' || record.state !== 'COMPLETED' || record.reused || record.durationMs === undefined) continue
      const ms = Math.max(0, record.durationMs - (record.waitedMs ?? 0))
      const list = samples.get(record.id)
      if (list === undefined) samples.set(record.id, [ms])
      else list.push(ms)
    }
  }
  const medians = new Map<string, number>()
  for (const [id, list] of samples) medians.set(id, list.sort((a, b) => a - b)[list.length >> 1]!)
  return medians
}
