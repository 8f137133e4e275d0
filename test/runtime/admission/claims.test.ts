import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClaimRegistry } from '../../../src/runtime/admission/claims.ts'
import { claimsOverlap } from '../../../src/runtime/plan/claim-patterns.ts'
import { type CompiledTask, type Plan, type TaskSpec } from '../../../src/runtime/plan/plan.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const claimAgent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'claim.mjs')
const task = (id: string, input: Record<string, unknown>, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: claimAgent, input, ...extra })

interface Witness {
  answers: { granted: boolean; holder?: string }[]
  startedAt: number
  finishedAt: number
}
const witness = (result: RunResult, id: string) => result.tasks[id]!.output as Witness
const overlapInTime = (a: Witness, b: Witness) => a.startedAt < b.finishedAt && b.startedAt < a.finishedAt
/** Closed intervals: tasks that waited for each other's signal at least touch. */
const touchInTime = (a: Witness, b: Witness) => a.startedAt <= b.finishedAt && b.startedAt <= a.finishedAt

describe('claimsOverlap', () => {
  it('treats the same path as overlapping', () => {
    expect(claimsOverlap('src/a.ts', 'src/a.ts')).toBe(true)
  })

  it('treats a directory path as covering everything beneath it', () => {
    expect(claimsOverlap('src/api', 'src/api/user.ts')).toBe(true)
  })

  it('does not confuse a path with a sibling sharing its prefix', () => {
    expect(claimsOverlap('src/a.ts', 'src/a.tsx')).toBe(false)
  })

  it('ignores a leading ./ and trailing slashes', () => {
    expect(claimsOverlap('./src/api/', 'src/api')).toBe(true)
  })

  it('matches a path against a glob', () => {
    expect(claimsOverlap('src/*.ts', 'src/main.ts')).toBe(true)
  })

  it('keeps a path outside a glob apart from it', () => {
    expect(claimsOverlap('src/*.ts', 'src/readme.md')).toBe(false)
  })

  it('treats a glob under a claimed directory as overlapping', () => {
    expect(claimsOverlap('src', 'src/api/**/*.ts')).toBe(true)
  })

  it('treats a glob matching a parent directory as covering the files under it', () => {
    expect(claimsOverlap('src/*', 'src/api/user.ts')).toBe(true)
  })

  it('keeps globs with disjoint static parts apart', () => {
    expect(claimsOverlap('src/api/**', 'docs/*.md')).toBe(false)
  })

  it('treats globs with nested static parts as overlapping', () => {
    expect(claimsOverlap('src/**', 'src/api/*.ts')).toBe(true)
  })

  it('treats a glob with no static part as overlapping any claim', () => {
    expect(claimsOverlap('**/*.md', 'docs/guide/*.txt')).toBe(true)
  })
})

describe('ClaimRegistry', () => {
  const plan = compilePlan(
    {
      agents: { x: claimAgent },
      tasks: [
        { id: 'a', agent: 'x', claims: ['src/**'] },
        { id: 'b', agent: 'x', claims: ['src/api/user.ts'] },
        { id: 'c', agent: 'x', claims: ['docs/**'] },
        { id: 'd', agent: 'x' },
      ],
    },
    { baseDir: import.meta.dirname },
  )
  const t = (id: string): CompiledTask => plan.tasks[plan.byId.get(id)!]!

  it('refuses a task whose static claims overlap a running task’s', () => {
    const registry = new ClaimRegistry()
    expect(registry.tryAcquire('r1', t('a'))).toBe(true)
    expect(registry.tryAcquire('r1', t('b'))).toBe(false)
  })

  it('admits a task whose claims are disjoint from every holder’s', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('a'))
    expect(registry.tryAcquire('r1', t('c'))).toBe(true)
  })

  it('refuses the same claim to a task of another run', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('a'))
    expect(registry.tryAcquire('r2', t('a'))).toBe(false)
  })

  it('admits the refused task once the holder is released', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('a'))
    registry.release('r1', t('a'))
    expect(registry.tryAcquire('r1', t('b'))).toBe(true)
  })

  it('names the holder when refusing a run-time claim', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('a'))
    expect(registry.claim('r1', 'd', 'src/index.ts')).toEqual({ granted: false, holder: 'a', holderRunId: 'r1' })
  })

  it('grants a task a run-time claim overlapping its own static claims', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('a'))
    expect(registry.claim('r1', 'a', 'src/index.ts')).toEqual({ granted: true })
  })

  it('gives back a run-time claim on unclaim', () => {
    const registry = new ClaimRegistry()
    registry.claim('r1', 'd', 'src/index.ts')
    registry.unclaim('r1', 'd', 'src/index.ts')
    expect(registry.tryAcquire('r1', t('b'))).toBe(true)
  })

  it('releases run-time claims with the task’s static ones', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('c'))
    registry.claim('r1', 'c', 'src/index.ts')
    registry.release('r1', t('c'))
    expect(registry.size).toBe(0)
  })

  it('holds nothing for a task without claims', () => {
    const registry = new ClaimRegistry()
    registry.tryAcquire('r1', t('d'))
    expect(registry.size).toBe(0)
  })
})

describe('claims in real runs', () => {
  let runtime: Runtime
  let dir: string
  const file = (name: string) => join(dir, name)

  beforeAll(() => {
    // No governor: on a busy machine it would admit one task at a time, and these tests need overlap.
    runtime = createRuntime({
      config: { maxParallel: 3, pool: { minThreads: 3, maxThreads: 3 }, governor: { enabled: false }, checkpoint: { enabled: false } },
    })
    dir = mkdtempSync(join(tmpdir(), 'troupe-claims-'))
  })

  afterAll(async () => {
    await runtime.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('never runs two tasks that claim the same file at the same time', async () => {
    const plan: Plan = {
      tasks: [
        task('a', { steps: [['sleep', 150]] }, { claims: ['out/report.md'] }),
        task('b', { steps: [['sleep', 150]] }, { claims: ['out/report.md'] }),
        task('c', { steps: [['sleep', 150]] }, { claims: ['out/*.md'] }),
      ],
    }
    const result = await runtime.run(plan).result
    expect(result.status).toBe('completed')
    const [a, b, c] = ['a', 'b', 'c'].map((id) => witness(result, id))
    expect([overlapInTime(a!, b!), overlapInTime(a!, c!), overlapInTime(b!, c!)]).toEqual([false, false, false])
  })

  it('runs tasks with disjoint claims side by side', async () => {
    // Each task waits for the other's signal: both see it only if they run at once.
    const plan: Plan = {
      tasks: [
        task('a', { steps: [['signal', file('a-up')], ['wait', file('b-up')]] }, { claims: ['src/**'] }),
        task('b', { steps: [['signal', file('b-up')], ['wait', file('a-up')]] }, { claims: ['docs/**'] }),
      ],
    }
    const result = await runtime.run(plan).result
    expect(touchInTime(witness(result, 'a'), witness(result, 'b'))).toBe(true)
  })

  it('keeps claims apart across runs on one runtime', async () => {
    const one = runtime.run({ tasks: [task('writer', { steps: [['sleep', 150]] }, { claims: ['shared.lock'] })] })
    const two = runtime.run({ tasks: [task('writer', { steps: [['sleep', 150]] }, { claims: ['shared.lock'] })] })
    const [r1, r2] = await Promise.all([one.result, two.result])
    expect(overlapInTime(witness(r1, 'writer'), witness(r2, 'writer'))).toBe(false)
  })

  it('tells an agent which task holds a claim it asked for', async () => {
    // a holds src/** until b has asked for a file under it.
    const plan: Plan = {
      tasks: [
        task('a', { steps: [['wait', file('asked')]] }, { claims: ['src/**'], priority: 'high' }),
        task('b', { steps: [['claim', 'src/index.ts'], ['signal', file('asked')]] }),
      ],
    }
    const result = await runtime.run(plan).result
    expect(witness(result, 'b').answers).toEqual([{ granted: false, holder: 'a', holderRunId: result.runId }])
  })

  it('grants a run-time claim once its holder released it', async () => {
    const plan: Plan = {
      tasks: [
        task('a', { steps: [['claim', 'db.lock'], ['signal', file('held')], ['wait', file('refused')], ['release', 'db.lock'], ['signal', file('released')]] }),
        task('b', { steps: [['wait', file('held')], ['claim', 'db.lock'], ['signal', file('refused')], ['wait', file('released')], ['claim', 'db.lock']] }),
      ],
    }
    const result = await runtime.run(plan).result
    expect(witness(result, 'b').answers.map((a) => a.granted)).toEqual([false, true])
  })

  it('releases every claim of a task that failed', async () => {
    const failed = await runtime.run({ tasks: [task('a', { steps: [['claim', 'state.json'], ['fail']] }, { claims: ['cache/**'] })] }).result
    expect(failed.tasks.a!.state).toBe('FAILED')
    const result = await runtime.run({ tasks: [task('b', { steps: [['claim', 'state.json']] }, { claims: ['cache/x'] })] }).result
    expect([result.tasks.b!.state, witness(result, 'b').answers[0]]).toEqual(['COMPLETED', { granted: true }])
  })
})
