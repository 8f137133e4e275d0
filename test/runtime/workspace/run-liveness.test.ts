import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isRunLive, markOwner } from '../../../src/runtime/workspace/run-liveness.ts'

function runDir(runId: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-live-'))
  mkdirSync(join(dir, runId, 'worktrees'), { recursive: true })
  return dir
}

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout)
}

describe('isRunLive', () => {
  it('is live while the process named in the workspaces marker is alive', () => {
    const dir = runDir('r')
    markOwner(join(dir, 'r', 'worktrees'))
    expect(isRunLive(dir, 'r')).toBe(true)
  })

  it('is not live once that process has exited', () => {
    const dir = runDir('r')
    writeFileSync(join(dir, 'r', 'worktrees', '.owner'), `${deadPid()}\n`)
    expect(isRunLive(dir, 'r')).toBe(false)
  })

  it('prefers the journal lock file, plain or JSON', () => {
    const dir = runDir('r')
    writeFileSync(join(dir, 'r', 'worktrees', '.owner'), `${deadPid()}\n`)
    writeFileSync(join(dir, 'r', 'lock'), JSON.stringify({ pid: process.pid }))
    expect(isRunLive(dir, 'r')).toBe(true)
  })

  it('is not live when the journal ends with run-end, whoever holds the marker', () => {
    const dir = runDir('r')
    markOwner(join(dir, 'r', 'worktrees'))
    writeFileSync(join(dir, 'r', 'journal.jsonl'), `${JSON.stringify({ type: 'run-start' })}\n${JSON.stringify({ type: 'run-end', status: 'completed' })}\n`)
    expect(isRunLive(dir, 'r')).toBe(false)
  })

  it('is not live without any marker', () => {
    expect(isRunLive(runDir('r'), 'r')).toBe(false)
  })
})
