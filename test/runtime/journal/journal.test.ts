import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Journal, journalFile, resultFile, type JournalRecord } from '../../../src/runtime/journal/journal.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { type CompiledTask, type Plan, type TaskSpec } from '../../../src/runtime/plan/plan.ts'
import { RunPlan } from '../../../src/runtime/plan/run-plan.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'
import { StageCheckpoint } from '../../../src/runtime/journal/stage-checkpoint.ts'

const agent = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'agents', name)

let root: string
let dir: string
let checkpointDir: string
let runtime: Runtime

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-journal-'))
  checkpointDir = join(root, 'checkpoints')
  runtime = createRuntime({
    config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { dir: checkpointDir } },
  })
})

afterAll(async () => {
  await runtime.close()
  rmSync(root, { recursive: true, force: true })
})

let testIndex = 0
beforeEach(() => {
  dir = join(root, `case-${++testIndex}`)
})

const marks = () => join(dir, 'marks.txt')
const marker = (id: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent('marker.mjs'), input: { file: marks() }, ...extra })
const flaky = (id: string, failures: number, extra: Partial<TaskSpec> = {}): TaskSpec => ({
  id,
  agent: agent('flaky.mjs'),
  input: { dir, name: id, failures },
  retries: 0,
  ...extra,
})
const runsOf = (id: string) => (existsSync(marks()) ? readFileSync(marks(), 'utf8').split('\n').filter((line) => line === id).length : 0)
const records = (runId: string): JournalRecord[] =>
  readFileSync(journalFile(checkpointDir, runId), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as JournalRecord)

async function prepare(): Promise<void> {
  mkdirSync(dir, { recursive: true })
}

describe('the journal', () => {
  it('records run-start, every terminal task with its hash, and run-end, one JSON object per line', async () => {
    await prepare()
    const plan: Plan = { name: 'layout', tasks: [marker('a'), flaky('f', 5), marker('b', { dependsOn: ['f'] })] }
    await runtime.run(plan, { runId: 'layout' }).result
    const lines = records('layout')
    expect(lines[0]).toMatchObject({ type: 'run-start', runId: 'layout', name: 'layout', strategy: 'concurrent', maxParallel: 2, reused: 0 })
    expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', totals: { completed: 1, failed: 1, skipped: 1 } })
    expect(lines[0]).toMatchObject({ plan: { tasks: [{ id: 'a', dependsOn: [] }, { id: 'f', dependsOn: [] }, { id: 'b', dependsOn: ['f'] }] } })
    const tasks = lines.filter((line) => line.type === 'task')
    expect(Object.fromEntries(tasks.map((t) => [t.id, t.state]))).toEqual({ a: 'COMPLETED', f: 'FAILED', b: 'SKIPPED' })
    expect(tasks.find((t) => t.id === 'a')).toMatchObject({ attempt: 1, output: { taskId: 'a' }, hash: expect.any(String) })
    expect(tasks.find((t) => t.id === 'f')).toMatchObject({ error: { code: 'ERR_TASK_FAILED' } })
  })

  it('numbers this invocation one past the run-starts an earlier run with its id journaled', async () => {
    await prepare()
    const plan: Plan = { name: 'count', tasks: [marker('a')] }
    await runtime.run(plan, { runId: 'count' }).result
    await runtime.run(plan, { runId: 'count' }).result
    const runPlan = new RunPlan(compilePlan(plan, { baseDir: dir }))
    const journal = new Journal({ dir: checkpointDir, runId: 'count', plan: runPlan, strategy: 'concurrent', maxParallel: 1, models: {}, now: Date.now })
    journal.release()
    expect(journal.invocation).toBe(3)
  })

  it('writes the final RunResult to result.json', async () => {
    await prepare()
    const result = await runtime.run({ name: 'result', tasks: [marker('a')] }, { runId: 'result' }).result
    expect(JSON.parse(readFileSync(resultFile(checkpointDir, 'result'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(result)))
  })

  it('writes nothing when checkpoint.enabled is false', async () => {
    await prepare()
    const off = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false, dir: checkpointDir } } })
    try {
      await off.run({ name: 'off', tasks: [marker('a')] }, { runId: 'off' }).result
    } finally {
      await off.close()
    }
    expect(existsSync(join(checkpointDir, 'off'))).toBe(false)
  })

  it('marks the end of each pipeline stage', async () => {
    await prepare()
    const plan: Plan = {
      name: 'stages',
      strategy: 'pipeline',
      tasks: [marker('d1', { stage: 'design' }), marker('d2', { stage: 'design' }), marker('b1', { stage: 'build' })],
    }
    await runtime.run(plan, { runId: 'stages' }).result
    const kinds = records('stages').map((r) => (r.type === 'task' ? r.id : r.type === 'stage' ? `stage:${r.stage}` : r.type))
    expect(kinds.indexOf('stage:design')).toBeGreaterThan(Math.max(kinds.indexOf('d1'), kinds.indexOf('d2')))
    expect(kinds.indexOf('stage:design')).toBeLessThan(kinds.indexOf('b1'))
    expect(kinds.at(-2)).toBe('stage:build')
  })
})

describe('pipeline checkpoints between stages (StageCheckpoint gate)', () => {
  it('admits a stage only once the previous stage is durable in the journal', async () => {
    await prepare()
    const plan = new RunPlan(
      compilePlan({ name: 'gate', strategy: 'pipeline', tasks: [marker('d1', { stage: 'design' }), marker('b1', { stage: 'build' })] }, { baseDir: dir }),
    )
    let durable!: () => void
    const stageDurable = new Promise<void>((resolve) => (durable = resolve))
    const journal = new Journal({ dir: checkpointDir, runId: 'gate', plan, strategy: 'pipeline', maxParallel: 1, models: {}, now: Date.now, onStageDurable: () => durable() })
    await journal.open()
    const gate = new StageCheckpoint()
    gate.track('gate', plan, journal)
    const [design, build] = plan.tasks as [CompiledTask, CompiledTask]
    expect(gate.tryAcquire('gate', design)).toBe(true)
    journal.taskEnded(design, { state: 'COMPLETED', attempts: 1, output: null })
    expect(gate.tryAcquire('gate', build)).toBe(false)
    await stageDurable
    expect(gate.tryAcquire('gate', build)).toBe(true)
    expect(readFileSync(journal.file, 'utf8')).toContain('"type":"stage","stage":"design","completed":true')
    // Its run never ends: the file is closed here (left open, it was closed by the GC with a warning).
    await journal.release()
  })
})

describe('resume (same runId)', () => {
  it('reuses completed tasks without running them, and reruns the rest', async () => {
    await prepare()
    const plan: Plan = { name: 'resume', tasks: [marker('a'), flaky('f', 1), marker('c', { dependsOn: ['a', 'f'] })] }
    const first = await runtime.run(plan, { runId: 'resume' }).result
    expect(first.totals).toMatchObject({ completed: 1, failed: 1, skipped: 1, reused: 0 })
    const second = await runtime.run(plan, { runId: 'resume' }).result
    expect(second.status).toBe('completed')
    expect(second.totals.reused).toBe(1)
    expect(second.tasks.a).toMatchObject({ state: 'COMPLETED', reused: true })
    expect(runsOf('a')).toBe(1)
    expect(runsOf('c')).toBe(1)
  })

  it('feeds reused outputs to dependents', async () => {
    await prepare()
    const plan: Plan = { name: 'feed', tasks: [marker('a'), flaky('f', 1), { id: 'c', agent: agent('echo.mjs'), dependsOn: ['a', 'f'] }] }
    await runtime.run(plan, { runId: 'feed' }).result
    const second = await runtime.run(plan, { runId: 'feed' }).result
    expect(second.tasks.c!.output).toMatchObject({ dependencies: { a: { taskId: 'a', from: [] }, f: { calls: 2 } } })
  })

  it('tolerates a torn last line and cuts it off before appending', async () => {
    await prepare()
    const plan: Plan = { name: 'torn', tasks: [marker('a'), flaky('f', 1)] }
    await runtime.run(plan, { runId: 'torn' }).result
    appendFileSync(journalFile(checkpointDir, 'torn'), '{"type":"task","id":"f","hash":"')
    const second = await runtime.run(plan, { runId: 'torn' }).result
    expect(second.status).toBe('completed')
    expect(second.totals.reused).toBe(1)
    expect(() => records('torn')).not.toThrow()
  })

  it('reruns a task whose definition changed, and everything downstream of it', async () => {
    await prepare()
    const plan = (input: string): Plan => ({
      name: 'changed',
      tasks: [
        marker('a', { input: { file: marks(), version: input } }),
        marker('b', { dependsOn: ['a'] }),
        marker('unrelated'),
      ],
    })
    await runtime.run(plan('v1'), { runId: 'changed' }).result
    const second = await runtime.run(plan('v2'), { runId: 'changed' }).result
    expect(second.status).toBe('completed')
    expect([runsOf('a'), runsOf('b'), runsOf('unrelated')]).toEqual([2, 2, 1])
    expect(second.totals.reused).toBe(1)
  })

  it('counts reused tasks in totals.reused and reports them on run:start', async () => {
    await prepare()
    const plan: Plan = { name: 'all', tasks: [marker('a'), marker('b', { dependsOn: ['a'] })] }
    await runtime.run(plan, { runId: 'all' }).result
    const run = runtime.run(plan, { runId: 'all' })
    let reusedAtStart: number | undefined
    run.on('run:start', (e) => (reusedAtStart = e.reused))
    const second = await run.result
    expect(reusedAtStart).toBe(2)
    expect(second.totals).toMatchObject({ tasks: 2, completed: 2, reused: 2 })
    expect([runsOf('a'), runsOf('b')]).toEqual([1, 1])
  })
})

describe('pipeline resume', () => {
  it('a resumed pipeline run whose first stage is all reused runs the next stage (regression: the run hung)', async () => {
    // Its end marker was never written: the reused tasks' stage ended, but nothing flushed it.
    await prepare()
    const plan: Plan = { name: 'staged', strategy: 'pipeline', tasks: [marker('a', { stage: 'one' }), flaky('f', 1, { stage: 'two' })] }
    const first = await runtime.run(plan, { runId: 'staged-resume' }).result
    expect(first.tasks.f!.state).toBe('FAILED')
    const second = await runtime.run(plan, { runId: 'staged-resume' }).result
    expect([second.status, second.totals.reused, runsOf('a')]).toEqual(['completed', 1, 1])
  }, 60_000)
})

describe('hybrid runs in the journal', () => {
  const hybrid = (): Plan => ({
    name: 'hybrid',
    strategy: 'hybrid',
    stages: { one: { parallel: false }, two: { parallel: true } },
    tasks: [marker('a1', { stage: 'one' }), marker('a2', { stage: 'one' }), marker('b1', { stage: 'two', dependsOn: ['a1'] })],
  })

  it('the run-start record says hybrid', async () => {
    await prepare()
    await runtime.run(hybrid(), { runId: 'hybrid-header' }).result
    expect(records('hybrid-header')[0]).toMatchObject({ type: 'run-start', strategy: 'hybrid' })
  })

  it('an old journal of a hybrid plan (run-start says pipeline) resumes as hybrid, reusing its stage', async () => {
    await prepare()
    // What troupe wrote for a hybrid plan when it compiled it as a pipeline: stage "one" completed, b1 failed.
    const plan = new RunPlan(compilePlan(hybrid(), { baseDir: dir }))
    let durable!: () => void
    const stageDurable = new Promise<void>((resolve) => (durable = resolve))
    const options = { dir: checkpointDir, runId: 'hybrid-old', plan, strategy: 'pipeline' as const, maxParallel: 2, models: {} }
    const old = new Journal({ ...options, now: Date.now, onStageDurable: () => durable() })
    await old.open()
    const [a1, a2, b1] = plan.tasks as [CompiledTask, CompiledTask, CompiledTask]
    old.taskEnded(a1, { state: 'COMPLETED', attempts: 1, output: null })
    old.taskEnded(a2, { state: 'COMPLETED', attempts: 1, output: null })
    await stageDurable
    old.taskEnded(b1, { state: 'FAILED', attempts: 1, error: { code: 'ERR_TASK_FAILED', message: 'boom' } })
    await old.runEnded({ status: 'failed', totals: { tasks: 3, completed: 2, failed: 1 }, tasks: {} } as unknown as RunResult)
    expect(records('hybrid-old')[0]).toMatchObject({ type: 'run-start', strategy: 'pipeline' })

    const resumed = await runtime.run(hybrid(), { runId: 'hybrid-old', baseDir: dir }).result
    const runs = [runsOf('a1'), runsOf('a2'), runsOf('b1')]
    expect([resumed.status, resumed.strategy, resumed.totals.reused, runs]).toEqual(['completed', 'hybrid', 2, [0, 0, 1]])
  }, 60_000)
})
