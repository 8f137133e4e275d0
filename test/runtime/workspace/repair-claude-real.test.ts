import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { gitIn, tempRepo } from '../../helpers/git-repo.ts'
import type { Script } from '../../helpers/model-servers/anthropic.ts'
import { realClaudeSuite, type RealClaudeSession } from '../../helpers/real-claude.ts'
import { hasRealCli } from '../../helpers/real-clis.ts'

// Acceptance of repair loops (#24) with the REAL `claude` CLI against the scripted Messages API: a repair resumes the
// session of the attempt (`--resume <session id>`), and its next user message carries the failure.
const { claude, root, start } = realClaudeSuite('troupe-repair-claude-')

/** A wrapper around the real claude that logs each invocation's argv (one line each), so the test sees `--resume`. */
function loggingClaude(): { bin: string; log: string } {
  const dir = mkdtempSync(join(root, 'bin-'))
  const bin = join(dir, 'claude')
  const log = join(dir, 'argv.log')
  writeFileSync(bin, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${claude}' "$@"\n`)
  chmodSync(bin, 0o755)
  return { bin, log }
}

/** Text of the last user message of a request (the prompt of a resumed session's new turn). */
function lastUserText(body: Record<string, unknown>): string {
  const messages = (body.messages ?? []) as { role: string; content: unknown }[]
  const last = messages.filter((m) => m.role === 'user').at(-1)
  return JSON.stringify(last?.content ?? '')
}

/** Session ids Claude Code stored under the throwaway config dir. */
function sessionsIn(home: string): string[] {
  const projects = join(home, '.claude', 'projects')
  const files = readdirSync(projects).flatMap((p) => readdirSync(join(projects, p)))
  return files.filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -'.jsonl'.length))
}

function setUp(script: Script, repo: string): Promise<RealClaudeSession> {
  const pool = { minThreads: 0, maxThreads: 1 }
  return start(script, { maxParallel: 4, pool, cancelGraceMs: 500, governor: { enabled: false }, checkpoint: { dir: join(repo, '.troupe') } })
}

describe.runIf(hasRealCli('claude-code'))('repair loops with the real claude CLI', () => {
  it('acceptance: a verify that fails once is repaired in the same session (--resume <first session id>), one repair', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const repairPrompts: string[] = []
    const script: Script = ({ session, turn, body }) => {
      const workspace = session.split(' ')[1]!
      if (turn === 0) return { toolUses: [{ name: 'Write', input: { file_path: join(workspace, 'work.txt'), content: 'work\n' } }] }
      if (turn === 1) return { text: 'done' }
      if (turn === 2) {
        repairPrompts.push(lastUserText(body))
        return { toolUses: [{ name: 'Write', input: { file_path: join(workspace, 'fixed.txt'), content: 'fixed\n' } }] }
      }
      return { text: 'fixed' }
    }
    const { runtime, server, env, home } = await setUp(script, repo)
    const { bin, log } = loggingClaude()
    const plan = {
      name: 'verify-repair',
      workspace: 'worktree',
      integration: { verify: 'test -f fixed.txt || { echo "VERIFY-SAYS: fixed.txt is missing"; exit 1; }' },
      agents: { coder: { kind: 'claude-code', bin, env, repair: { attempts: 2 } } },
      tasks: [{ id: 't', agent: 'coder', retries: 0, input: { prompt: 'fix {{workspace}}' } }],
    } as Plan
    const result = await runtime.run(plan, { runId: 'rv', baseDir: repo }).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(result.tasks.t?.attempts).toBe(1)
    expect(result.tasks.t?.repairs).toHaveLength(1)
    expect(result.tasks.t?.repairs?.[0]).toMatchObject({ attempt: 1, reason: 'verify' })
    expect(result.tasks.t?.repairs?.[0]?.detail).toContain('VERIFY-SAYS: fixed.txt is missing')
    // Two invocations: the second resumes the first one's session, whose id Claude Code kept.
    const [first, second, ...more] = readFileSync(log, 'utf8').trim().split('\n')
    expect(more).toEqual([])
    expect(first).not.toContain('--resume')
    const sessions = sessionsIn(home)
    expect(sessions).toHaveLength(1)
    expect(second).toContain(`--resume ${sessions[0]}`)
    expect((result.tasks.t?.output as { sessionId?: string } | undefined)?.sessionId).toBe(sessions[0])
    // The model's second conversation is the first one continued (turn 2), its new message the failure.
    expect(repairPrompts).toHaveLength(1)
    expect(repairPrompts[0]).toContain('VERIFY-SAYS: fixed.txt is missing')
    expect(server.mainRequests().filter((r) => r.turn === 2)).toHaveLength(1)
    expect(gitIn(repo, 'show', 'troupe/rv/integration:fixed.txt')).toBe('fixed')
    expect(gitIn(repo, 'show', 'troupe/rv/integration:work.txt')).toBe('work')
  }, 180_000)

  it('a repair counts only its own cost: a resumed session’s total_cost_usd holds the earlier run (regression: twice)', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const script: Script = ({ session, turn }) => {
      const file = join(session.split(' ')[1]!, turn < 2 ? 'work.txt' : 'fixed.txt')
      const tokens = turn < 2 ? { inputTokens: 1000, outputTokens: 1000 } : { inputTokens: 1, outputTokens: 1 }
      if (turn % 2 === 1) return { text: 'done', ...tokens }
      return { toolUses: [{ name: 'Write', input: { file_path: file, content: 'x\n' } }], ...tokens }
    }
    const { runtime, env } = await setUp(script, repo)
    const plan = {
      name: 'repair-cost',
      workspace: 'worktree',
      integration: { verify: 'test -f fixed.txt' },
      agents: { coder: { kind: 'claude-code', bin: claude, env, repair: { attempts: 1 } } },
      tasks: [{ id: 't', agent: 'coder', retries: 0, input: { prompt: 'fix {{workspace}}' } }],
    } as Plan
    const result = await runtime.run(plan, { runId: 'rk', baseDir: repo }).result
    expect(result.tasks.t?.repairs).toHaveLength(1)
    const output = result.tasks.t?.output as { usage: { costUsd: number }; sessionTotals: { costUsd: number } }
    // The spend is Claude's own total for the session (both runs), once; the repair's own share is small.
    expect(result.usage?.total.costUsd).toBeCloseTo(output.sessionTotals.costUsd, 6)
    expect(output.usage.costUsd).toBeLessThan(output.sessionTotals.costUsd / 10)
  }, 180_000)

  it('acceptance: a conflict is repaired after rebasing: the later task resolves it in its session, both changes merged', async () => {
    const repo = tempRepo({ 'shared.txt': 'one\n', '.gitignore': '.troupe/\n' })
    let aMerged: () => void = () => {}
    const aDone = new Promise<void>((resolve) => (aMerged = resolve))
    const conflictPrompts: string[] = []
    const script: Script = async ({ session, turn, body }) => {
      const [who, workspace] = session.split(' ') as [string, string]
      const file = join(workspace, 'shared.txt')
      if (who === 'A' && turn === 0) return { toolUses: [{ name: 'Write', input: { file_path: file, content: 'from A\n' } }] }
      if (who === 'A') return { text: 'A done' }
      if (turn === 0) {
        // B edits the same line, but only after A is merged: B's merge conflicts.
        await aDone
        return { toolUses: [{ name: 'Write', input: { file_path: file, content: 'from B\n' } }] }
      }
      if (turn === 1) return { text: 'B done' }
      if (turn === 2) {
        conflictPrompts.push(lastUserText(body))
        return { toolUses: [{ name: 'Write', input: { file_path: file, content: 'from A\nfrom B\n' } }] }
      }
      return { text: 'resolved' }
    }
    const { runtime, env } = await setUp(script, repo)
    const { bin, log } = loggingClaude()
    const plan = {
      name: 'conflict-repair',
      workspace: 'worktree',
      agents: { coder: { kind: 'claude-code', bin, env } },
      tasks: [
        { id: 'A', agent: 'coder', retries: 0, input: { prompt: 'A {{workspace}}' } },
        { id: 'B', agent: 'coder', retries: 0, input: { prompt: 'B {{workspace}}' }, repair: { attempts: 1, on: ['conflict'] } },
      ],
    } as Plan
    const run = runtime.run(plan, { runId: 'rc', baseDir: repo })
    run.on('task:state', (e) => {
      if (e.taskId === 'A' && e.state === 'COMPLETED') aMerged()
    })
    const result = await run.result
    expect(result.tasks.A?.state).toBe('COMPLETED')
    expect(result.tasks.B?.state).toBe('COMPLETED')
    expect(result.tasks.B?.repairs?.map((r) => r.reason)).toEqual(['conflict'])
    expect(conflictPrompts).toHaveLength(1)
    expect(conflictPrompts[0]).toContain('Conflicts in: shared.txt')
    expect(conflictPrompts[0]).toContain('<<<<<<<')
    expect(readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.includes('--resume'))).toHaveLength(1)
    expect(gitIn(repo, 'show', 'troupe/rc/integration:shared.txt')).toBe('from A\nfrom B')
  }, 180_000)

  it('a session that cannot be resumed (its files gone): the repair falls back to a fresh session (prompt + failure)', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const fresh: string[] = []
    const script: Script = ({ session, turn }) => {
      const workspace = session.split(/\s/)[1]!
      if (session.includes('was not merged')) {
        fresh.push(session)
        if (turn === 0) return { toolUses: [{ name: 'Write', input: { file_path: join(workspace, 'fixed.txt'), content: 'fixed\n' } }] }
        return { text: 'fixed' }
      }
      if (turn === 0) return { toolUses: [{ name: 'Write', input: { file_path: join(workspace, 'work.txt'), content: 'work\n' } }] }
      return { text: 'done' }
    }
    const { runtime, env } = await setUp(script, repo)
    // A claude that refuses every resume, as when the session's files were removed.
    const dir = mkdtempSync(join(root, 'bin-'))
    const bin = join(dir, 'claude')
    const noResume = `case "$*" in *--resume*) echo "No conversation found with session ID" >&2; exit 1;; esac`
    writeFileSync(bin, `#!/bin/sh\n${noResume}\nexec '${claude}' "$@"\n`)
    chmodSync(bin, 0o755)
    const plan = {
      name: 'fresh-repair',
      workspace: 'worktree',
      integration: { verify: 'test -f fixed.txt || { echo "VERIFY-SAYS: fixed.txt is missing"; exit 1; }' },
      agents: { coder: { kind: 'claude-code', bin, env, repair: { attempts: 1 } } },
      tasks: [{ id: 't', agent: 'coder', retries: 0, input: { prompt: 'fix {{workspace}}' } }],
    } as Plan
    const run = runtime.run(plan, { runId: 'rf', baseDir: repo })
    const logs: string[] = []
    run.on('task:log', (e) => logs.push(e.message))
    const result = await run.result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(result.tasks.t?.repairs).toHaveLength(1)
    expect(logs.some((l) => l.includes('resuming session') && l.includes('starting a fresh session'))).toBe(true)
    // The fresh session's prompt: the task's, then the failure.
    expect(fresh[0]).toMatch(/^fix \S+\n\ntroupe: the work of task "t" was not merged/)
    expect(fresh[0]).toContain('VERIFY-SAYS: fixed.txt is missing')
    expect(gitIn(repo, 'show', 'troupe/rf/integration:fixed.txt')).toBe('fixed')
  }, 180_000)
})
