import { isTroupeError } from '../core/errors.ts'
import type { RunStatus } from '../report/result.ts'
import { liveHolder } from './lock.ts'
import { journaledRunIds, journalFile, runDir } from './paths.ts'
import { readJournal, summarize } from './reader.ts'

/** One run found in the checkpoint directory, as `troupe runs` lists it. */
export interface RunInfo {
  readonly runId: string
  /** `running`: a live process holds its lock; `interrupted`: its last invocation never ended (killed); `unreadable`: see `error`. */
  readonly status: RunStatus | 'running' | 'interrupted' | 'unreadable'
  readonly name: string | undefined
  /** When the run was first started (epoch ms); resumes keep it. */
  readonly startedAt: number | undefined
  /** When its last invocation ended. */
  readonly endedAt: number | undefined
  /** Tasks whose latest record is COMPLETED, and tasks in the plan. */
  readonly done: number
  readonly total: number
  /** Of `done`, tasks whose output came from the task cache. */
  readonly cached?: number
  /** The first run and every resume. */
  readonly invocations: number
  /** Tasks awaiting approval (docs/plans.md#approval-gates): `troupe approve <runId> <taskId>` decides. */
  readonly awaitingApproval: readonly string[]
  readonly error?: string
}

/** The runs in `checkpointDir` (one directory with a journal each), newest first. */
export function listRuns(checkpointDir: string): RunInfo[] {
  const runs = journaledRunIds(checkpointDir).map((runId) => runInfo(checkpointDir, runId))
  return runs.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0) || a.runId.localeCompare(b.runId))
}

/** What the journal of run `runId` says about it. */
export function runInfo(checkpointDir: string, runId: string): RunInfo {
  const holder = liveHolder(runDir(checkpointDir, runId))
  let contents
  try {
    contents = readJournal(journalFile(checkpointDir, runId))
  } catch (error) {
    if (!isTroupeError(error, 'ERR_JOURNAL_UNREADABLE')) throw error
    const base = { runId, name: undefined, startedAt: undefined, endedAt: undefined, done: 0, total: 0, invocations: 0 }
    return { ...base, awaitingApproval: [], status: 'unreadable', error: error.message }
  }
  const summary = summarize(contents?.records ?? [])
  let done = 0
  let cached = 0
  for (const record of summary.tasks.values()) {
    if (record.state !== 'COMPLETED') continue
    done++
    if (record.cached) cached++
  }
  const status = summary.lastEnd?.status ?? (holder !== undefined ? 'running' : 'interrupted')
  return {
    runId,
    status,
    name: summary.lastStart?.name,
    startedAt: summary.firstStart?.at,
    endedAt: summary.lastEnd?.at,
    done,
    ...(cached > 0 ? { cached } : {}),
    total: (summary.lastStart?.tasks ?? 0) + summary.addedSinceStart,
    invocations: summary.invocations,
    awaitingApproval: summary.lastEnd === undefined ? [...summary.awaiting] : [],
  }
}
