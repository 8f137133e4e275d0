import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApprovalEvent } from '../../../../src/runtime/report/events.ts'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { gitIn, tempRepo } from '../../../helpers/git-repo.ts'
import { startRedis, type TestRedis } from '../../../helpers/redis-server.ts'
import { startTroupeWorker } from '../../../helpers/troupe-worker.ts'

// Approval before merge on the Redis backend: the agent runs on a worker process (sharing the
// coordinator's filesystem, as worktree plans there need), and the coordinator holds its
// worktree for a person before the merge, exactly as with local workers.
process.env.TROUPE_SECRET = 'approval-test-secret-0123456789'
const edit = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'agents', 'workspace-edit.mjs')
const quiet = { governor: { enabled: false }, cancelGraceMs: 200 } as const

let redis: TestRedis
const children: ChildProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
  await startTroupeWorker(redis.url, children, { name: 'remote-editor' })
}, 60_000)

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await redis?.stop()
})

const plan: Plan = {
  name: 'remote-gated',
  workspace: 'worktree',
  agents: { edit },
  tasks: [{ id: 'w', agent: 'edit', approve: true, input: { write: { 'w.txt': 'remote work\n' } } }],
} as Plan

function awaiting(run: { on: (name: 'task:approval', listener: (e: ApprovalEvent) => void) => void }): Promise<ApprovalEvent> {
  return new Promise((resolve) => run.on('task:approval', (e) => e.state === 'awaiting' && resolve(e)))
}

describe('approval before merge, with the agent on a remote worker', () => {
  it('holds the worktree of a task that ran on the worker, and merges it once approved', async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const runtime = createRuntime({ config: { ...quiet, checkpoint: { dir: join(repo, '.troupe') } }, backend: redis.url })
    try {
      const run = runtime.run(plan, { runId: 'ra1', baseDir: repo })
      const held = await awaiting(run)
      expect(held.before).toBe('merge')
      expect(gitIn(repo, 'ls-tree', '--name-only', 'troupe/ra1/integration')).not.toContain('w.txt')
      run.approve('w')
      const result = await run.result
      expect(result.tasks.w).toMatchObject({ state: 'COMPLETED', worker: 'remote-editor', workspace: { merge: 'merged' } })
      expect(gitIn(repo, 'show', 'troupe/ra1/integration:w.txt')).toBe('remote work')
    } finally {
      await runtime.close({ force: true })
    }
  }, 90_000)

  it('fails a rejected task with ERR_APPROVAL_REJECTED and keeps its work off the integration branch', async () => {
    const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
    const runtime = createRuntime({ config: { ...quiet, checkpoint: { dir: join(repo, '.troupe') } }, backend: redis.url })
    try {
      const run = runtime.run(plan, { runId: 'ra2', baseDir: repo })
      await awaiting(run)
      run.reject('w', 'not this')
      const result = await run.result
      expect(result.tasks.w).toMatchObject({ state: 'FAILED', error: { code: 'ERR_APPROVAL_REJECTED' }, workspace: { merge: 'discarded' } })
      expect(gitIn(repo, 'ls-tree', '--name-only', 'troupe/ra2/integration')).not.toContain('w.txt')
    } finally {
      await runtime.close({ force: true })
    }
  }, 90_000)
})
