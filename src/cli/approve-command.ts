import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { approvalReason } from '../actors/approvals.ts'
import { loadConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import { appendApprovalRequest } from '../runtime/journal/approval-requests.ts'
import { liveHolder } from '../runtime/journal/lock.ts'
import { journalFile, runDir } from '../runtime/journal/paths.ts'
import { readJournal, summarize, type JournalSummary } from '../runtime/journal/reader.ts'
import type { JournalRecord } from '../runtime/journal/records.ts'
import { EXIT } from './exit-codes.ts'
import { checkRunId } from './run-id.ts'
import { terminalText } from './terminal-text.ts'

export interface ApproveCommandOptions {
  readonly config?: string
  /** Reject instead, with this reason. */
  readonly reject?: string
  /** How long to wait for a running run to apply the decision. @default 15000 */
  readonly waitMs?: number
}

/**
 * `troupe approve <runId> <taskId> [--reject "reason"]`: decides on a task awaiting approval,
 * from any terminal. The decision is appended to the run's request file (approval-requests.ts),
 * which the run's process applies and journals; a run no live process holds (killed, or
 * stopped) applies it once resumed and its task reaches the gate again. Exit 2 for an unknown
 * run or task, or a task not awaiting approval.
 */
export async function approveCommand(runId: string, taskId: string, options: ApproveCommandOptions = {}): Promise<number> {
  checkRunId(runId)
  const root = resolve(loadConfig({ file: options.config }).checkpoint.dir)
  const dir = runDir(root, runId)
  const journal = existsSync(dir) ? readJournal(journalFile(root, runId)) : undefined
  if (journal === undefined) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `No run "${runId}" in ${root} (checkpoint.dir); \`troupe runs\` lists the runs`)
  }
  const summary = summarize(journal.records)
  checkAwaiting(summary, runId, taskId, journal.records)
  const decision = options.reject === undefined ? 'approve' : 'reject'
  const holder = liveHolder(dir)
  if (holder === undefined && summary.approvals.get(taskId)?.before === 'merge') {
    process.stderr.write(
      `troupe: run ${runId} is not running, so nothing was recorded: resume it (troupe run <plan> --run-id ${runId}); ` +
        `its task redoes its work and asks again before merging, and troupe approve decides then\n`,
    )
    return EXIT.incomplete
  }
  const request = appendApprovalRequest(dir, {
    task: taskId,
    decision,
    by: 'cli',
    ...(options.reject === undefined ? {} : { reason: approvalReason(options.reject) }),
  })
  const task = terminalText(taskId, 200)
  const done = decision === 'approve' ? 'approved' : 'rejected'
  if (holder === undefined) {
    process.stderr.write(
      `troupe: recorded: task ${task} ${done}. Run ${runId} is not running; resume it (troupe run <plan> --run-id ${runId}) ` +
        'and the decision applies when the task reaches its approval gate again\n',
    )
    return EXIT.ok
  }
  const deadline = Date.now() + (options.waitMs ?? 15_000)
  while (Date.now() < deadline) {
    const now = readJournal(journalFile(root, runId))
    if (now !== undefined && summarize(now.records).decidedRequests.has(request.id)) {
      process.stderr.write(`troupe: task ${task} of run ${runId} ${done}\n`)
      return EXIT.ok
    }
    await sleep(100)
  }
  process.stderr.write(`troupe: recorded: task ${task} ${done}; run ${runId} (pid ${holder.pid}) has not applied it yet, it will\n`)
  return EXIT.ok
}

/** Throws, for exit 2, unless task `taskId` of the journaled run awaits approval. */
function checkAwaiting(summary: JournalSummary, runId: string, taskId: string, records: readonly JournalRecord[]): void {
  const known = new Set(summary.lastStart?.plan.tasks.map((t) => t.id) ?? [])
  for (const record of records) if (record.type === 'spawn') for (const t of record.tasks) known.add(t.id)
  const task = terminalText(JSON.stringify(taskId), 200)
  if (!known.has(taskId)) {
    throw new TroupeError(
      'ERR_APPROVAL_UNKNOWN_TASK',
      `Run "${runId}" has no task ${task}; \`troupe runs\` names the tasks awaiting approval`,
    )
  }
  if (summary.awaiting.has(taskId) && summary.lastEnd === undefined) return
  const ended = summary.tasks.get(taskId)?.state
  const why =
    ended !== undefined
      ? `it ended ${ended}`
      : summary.lastEnd !== undefined
        ? `the run ended ${summary.lastEnd.status}`
        : 'it has not reached an approval gate'
  throw new TroupeError('ERR_APPROVAL_NOT_AWAITING', `Task ${task} of run "${runId}" is not awaiting approval: ${why}`)
}
