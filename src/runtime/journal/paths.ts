import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Where a run keeps its files, under `checkpoint.dir` (default `.troupe`):
 * `<dir>/<runId>/journal.jsonl`, `result.json`, and `logs/<taskId>/<attempt>.log`.
 */

/** A run id: a plain name, safe as one path segment (never `.` or `..`). */
export const RUN_ID_PATTERN = /^(?!\.{1,2}$)[\w.-]{1,128}$/

export function isRunId(value: unknown): value is string {
  return typeof value === 'string' && RUN_ID_PATTERN.test(value)
}

/**
 * Creates the checkpoint directory (`.troupe/` by default) when it does not exist, with a
 * `.gitignore` of `*` inside: it holds journals, logs and worktrees, never to be committed,
 * and would otherwise show as untracked in the repository. An existing directory is left as
 * it is (the user may have their own rules).
 */
export function ensureCheckpointDir(checkpointDir: string): void {
  if (existsSync(checkpointDir)) return
  mkdirSync(checkpointDir, { recursive: true })
  try {
    writeFileSync(join(checkpointDir, '.gitignore'), '# Written by troupe: journals, logs and worktrees are not committed.\n*\n', { flag: 'wx' })
  } catch {
    // Another process created it first, or it cannot be written: not worth failing a run.
  }
}

/**
 * The names of the directories in the checkpoint directory, none when it does not exist:
 * every run's, also a killed run's that has a process ledger and no journal yet.
 */
export function runDirNames(checkpointDir: string): string[] {
  if (!existsSync(checkpointDir)) return []
  return readdirSync(checkpointDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
}

/** The runs in the checkpoint directory: the directories named as a run id that hold a journal. */
export function journaledRunIds(checkpointDir: string): string[] {
  return runDirNames(checkpointDir).filter((name) => isRunId(name) && existsSync(journalFile(checkpointDir, name)))
}

export function runDir(checkpointDir: string, runId: string): string {
  return join(checkpointDir, runId)
}

export function journalFile(checkpointDir: string, runId: string): string {
  return join(checkpointDir, runId, 'journal.jsonl')
}

export function resultFile(checkpointDir: string, runId: string): string {
  return join(checkpointDir, runId, 'result.json')
}

/**
 * The log of one attempt of one task: everything it logged (`ctx.log`, a process's stdout
 * and stderr). Task ids are user-chosen, so they are encoded into one safe path segment.
 */
export function attemptLogFile(runDirectory: string, taskId: string, attempt: number): string {
  return join(runDirectory, 'logs', taskIdSegment(taskId), `${attempt}.log`)
}

/**
 * The raw output of one attempt, as its executor received it: a process's stdout and stderr
 * (for CLI agents, the JSON event stream), an LLM's streamed answer. Beside the attempt's
 * log, which holds what the agent logged (`ctx.log`, parsed CLI events, output lines).
 */
export function attemptOutputFile(runDirectory: string, taskId: string, attempt: number): string {
  return join(runDirectory, 'logs', taskIdSegment(taskId), `${attempt}.output.log`)
}

/** The attempts with a stored log in one task's log directory (`logs/<task segment>`), in order. */
export function loggedAttempts(taskLogDir: string): number[] {
  return readdirSync(taskLogDir)
    .map((name) => /^(\d+)\.log$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b)
}

/** A task id as one path segment: percent-encoded, and never `.`/`..`. */
export function taskIdSegment(taskId: string): string {
  const encoded = encodeURIComponent(taskId).replace(/\*/g, '%2A')
  return encoded === '.' ? '%2E' : encoded === '..' ? '%2E%2E' : encoded
}
