import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parse } from '../../../src/runtime/journal/codec.ts'
import { resultText } from '../../../src/runtime/journal/journal.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { attemptLogFile, journalFile, resultFile, runDir } from '../../../src/runtime/journal/paths.ts'
import { readJournal } from '../../../src/runtime/journal/reader.ts'
import { seal } from '../../../src/runtime/journal/integrity.ts'
import type { Plan, TaskSpec } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agent = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'agents', name)

let root: string
let checkpointDir: string
let dir: string
let runtime: Runtime

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-journal-reg-'))
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
  mkdirSync(dir, { recursive: true })
})

const marks = () => join(dir, 'marks.txt')
const runsOf = (id: string) => (existsSync(marks()) ? readFileSync(marks(), 'utf8').split('\n').filter((line) => line === id).length : 0)
const marker = (id: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: agent('marker.mjs'), input: { file: marks() }, ...extra })
const special = (id: string, kind: string): TaskSpec => ({ id, agent: agent('special.mjs'), input: { kind } })
const lines = (runId: string) => readFileSync(journalFile(checkpointDir, runId), 'utf8').split('\n').filter(Boolean).length

describe('outputs JSON cannot encode (regression: result.json never written for 10n / cycles)', () => {
  it('writes result.json for outputs 10n, a Map and a cyclic object', async () => {
    const plan: Plan = { name: 'special', tasks: [special('big', 'bigint'), special('map', 'map'), special('cyc', 'cyclic')] }
    const result = await runtime.run(plan, { runId: 'special-out' }).result
    expect(result.status).toBe('completed')
    const stored = parse(readFileSync(resultFile(checkpointDir, 'special-out'), 'utf8')) as typeof result
    expect(stored.tasks.big!.output).toBe(10n)
    expect(stored.tasks.map!.output).toStrictEqual(new Map<string, unknown>([['k', 1], ['n', 2n]]))
    const cyc = stored.tasks.cyc!.output as { self: unknown; list: unknown[] }
    expect(cyc.self).toBe(cyc)
    expect(cyc.list[1]).toBe(cyc)
  })

  it('writes result text when an output is nested deeper than the codec allows, leaving that output out', () => {
    let deep: unknown = 0
    for (let i = 0; i < 2000; i++) deep = { d: deep }
    const result = { runId: 'r', totals: { tasks: 2 }, tasks: { deep: { state: 'COMPLETED', output: deep }, big: { state: 'COMPLETED', output: 10n } } } as unknown as RunResult
    const stored = parse(resultText(result)) as { tasks: Record<string, { output?: unknown; outputUnavailable?: string }> }
    expect(stored.tasks.deep).toMatchObject({ output: undefined, outputUnavailable: expect.stringContaining('1000 levels') })
    expect(stored.tasks.big!.output).toBe(10n)
  })

  it('reuses the exact 10n, Map and cyclic outputs on resume', async () => {
    const plan: Plan = {
      name: 'special-resume',
      tasks: [special('big', 'bigint'), special('map', 'map'), special('cyc', 'cyclic'), { id: 'echo', agent: agent('echo.mjs'), dependsOn: ['big', 'map', 'cyc'] }],
    }
    await runtime.run(plan, { runId: 'special-resume' }).result
    const second = await runtime.run(plan, { runId: 'special-resume' }).result
    expect(second.totals.reused).toBe(4)
    expect(second.tasks.big!.output).toBe(10n)
    expect(second.tasks.map!.output).toStrictEqual(new Map<string, unknown>([['k', 1], ['n', 2n]]))
    const deps = (second.tasks.echo!.output as { dependencies: Record<string, { self?: unknown }> }).dependencies
    expect(deps.cyc!.self).toBe(deps.cyc)
  })
})

describe('definition hashes (regression: stale outputs reused after an input changed)', () => {
  const changed = async (runId: string, before: unknown, after: unknown) => {
    const plan = (value: unknown): Plan => ({ name: runId, tasks: [marker('a', { input: { file: marks(), value } })] })
    await runtime.run(plan(before), { runId }).result
    return runtime.run(plan(after), { runId }).result
  }

  it('reruns a task whose input Map changed from {k:1} to {k:2}', async () => {
    const second = await changed('map-input', new Map([['k', 1]]), new Map([['k', 2]]))
    expect(second.totals.reused).toBe(0)
    expect(runsOf('a')).toBe(2)
  })

  it('reruns a task whose input Set changed from {1} to {2}', async () => {
    const second = await changed('set-input', new Set([1]), new Set([2]))
    expect(second.totals.reused).toBe(0)
  })

  it('reruns a task whose input changed from null to NaN', async () => {
    const second = await changed('nan-input', null, Number.NaN)
    expect(second.totals.reused).toBe(0)
  })

  it('refuses an input nested 10,000 levels deep with ERR_PLAN_INVALID, not a RangeError', () => {
    let deep: unknown = 0
    for (let i = 0; i < 10_000; i++) deep = { d: deep }
    const plan: Plan = { name: 'deep', tasks: [marker('a', { input: deep })] }
    expect(() => runtime.run(plan, { runId: 'deep' })).toThrow(expect.objectContaining({ code: 'ERR_PLAN_INVALID', message: expect.stringContaining('"a"') }))
  })
})

describe('journal growth (regression: every resume appended a copy of the reused records)', () => {
  it('appends only run-start and run-end when every task is reused', async () => {
    const plan: Plan = { name: 'growth', tasks: [marker('a'), marker('b', { dependsOn: ['a'] }), marker('c')] }
    await runtime.run(plan, { runId: 'growth' }).result
    const before = lines('growth')
    await runtime.run(plan, { runId: 'growth' }).result
    expect(lines('growth')).toBe(before + 2)
  })
})

describe('task records (regression: five {"$t":"undefined"} fields per line sent every record through the slow encoder)', () => {
  it('writes a completed task\'s line with only the fields its result has', async () => {
    await runtime.run({ name: 'fields', tasks: [marker('a')] }, { runId: 'fields' }).result
    const line = readFileSync(journalFile(checkpointDir, 'fields'), 'utf8').split('\n').find((l) => l.includes('"type":"task"'))!
    const fields = ['seq', 'type', 'id', 'hash', 'attempt', 'at', 'state', 'startedAt', 'finishedAt', 'durationMs', 'output', 'crc']
    expect(Object.keys(JSON.parse(line))).toEqual(fields)
  })

  it('reuses a task from a journal written with tagged undefined fields (the earlier format)', async () => {
    const plan: Plan = { name: 'old-format', tasks: [marker('a')] }
    await runtime.run(plan, { runId: 'old-format' }).result
    const file = journalFile(checkpointDir, 'old-format')
    const undef = { $t: 'undefined' }
    const rewritten = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const { seq, crc: _crc, ...record } = JSON.parse(line) as Record<string, unknown>
        if (record.type !== 'task') return line
        const old = { ...record, error: undef, reused: undef, repairs: undef, cached: undef, outputUnavailable: undef }
        return seal(seq as number, JSON.stringify(old))
      })
    writeFileSync(file, `${rewritten.join('\n')}\n`)
    const result = await runtime.run(plan, { runId: 'old-format' }).result
    expect([result.status, result.tasks.a!.reused, runsOf('a')]).toEqual(['completed', true, 1])
  })
})

describe('torn lines (regression: invalid UTF-8 earlier in the file moved the cut)', () => {
  it('cuts a torn last line holding invalid UTF-8 at its first byte, after multi-byte text', async () => {
    // A valid record whose string holds a byte sequence decoded text would count differently
    // (in the plan's name: records are sealed, so editing one in place is refused as damage).
    const plan: Plan = { name: 'utf8 é', tasks: [marker('a'), marker('b')] }
    await runtime.run(plan, { runId: 'utf8' }).result
    const file = journalFile(checkpointDir, 'utf8')
    appendFileSync(file, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22]))
    await runtime.run(plan, { runId: 'utf8' }).result
    const contents = readJournal(file)!
    expect(contents.validBytes).toBe(contents.size)
    expect(contents.records.filter((r) => r.type === 'run-start')).toHaveLength(2)
  })

  it('refuses invalid UTF-8 in a complete line with ERR_JOURNAL_UNREADABLE instead of cutting in the wrong place', async () => {
    const plan: Plan = { name: 'utf8-mid', tasks: [marker('a')] }
    await runtime.run(plan, { runId: 'utf8-mid' }).result
    const file = journalFile(checkpointDir, 'utf8-mid')
    const bytes = readFileSync(file)
    const at = bytes.indexOf('utf8-mid') + 2
    writeFileSync(file, Buffer.concat([bytes.subarray(0, at), Buffer.from([0xc3, 0x28]), bytes.subarray(at)]))
    expect(() => runtime.run(plan, { runId: 'utf8-mid' })).toThrow(expect.objectContaining({ code: 'ERR_JOURNAL_UNREADABLE', message: expect.stringContaining('(line 1): it is not valid UTF-8') }))
  })
})

describe('unreadable journals (regression: silently re-ran everything with exit 0)', () => {
  it('refuses a journal with a garbage line in the middle: ERR_JOURNAL_UNREADABLE naming the file and line', async () => {
    const plan: Plan = { name: 'garbage', tasks: [marker('a'), marker('b')] }
    await runtime.run(plan, { runId: 'garbage' }).result
    const file = journalFile(checkpointDir, 'garbage')
    const all = readFileSync(file, 'utf8').split('\n')
    all.splice(1, 0, 'this is not json')
    writeFileSync(file, all.join('\n'))
    expect(() => runtime.run(plan, { runId: 'garbage' })).toThrow(
      expect.objectContaining({ code: 'ERR_JOURNAL_UNREADABLE', message: expect.stringMatching(/journal\.jsonl \(line 2\).*Move the file away/) }),
    )
    expect(runsOf('a')).toBe(1)
  })

  it('refuses a file that is not a journal (first record not run-start)', () => {
    mkdirSync(runDir(checkpointDir, 'wrong-format'), { recursive: true })
    writeFileSync(journalFile(checkpointDir, 'wrong-format'), '{"hello":"world","type":"greeting"}\n')
    const plan: Plan = { name: 'wrong', tasks: [marker('a')] }
    expect(() => runtime.run(plan, { runId: 'wrong-format' })).toThrow(expect.objectContaining({ code: 'ERR_JOURNAL_UNREADABLE' }))
  })

  it('frees the run id after refusing an unreadable journal', () => {
    expect(existsSync(join(runDir(checkpointDir, 'wrong-format'), 'lock'))).toBe(false)
  })
})

describe('run ids (regression: --run-id .. wrote into the working directory)', () => {
  it.each(['..', '.', 'a/b', ''])('refuses runId %j with ERR_ARGUMENT_INVALID', (runId) => {
    const plan: Plan = { name: 'ids', tasks: [marker('a')] }
    expect(() => runtime.run(plan, { runId })).toThrow(expect.objectContaining({ code: 'ERR_ARGUMENT_INVALID' }))
  })
})

describe('per-attempt logs', () => {
  it('stores every ctx.log line of every attempt in logs/<taskId>/<attempt>.log', async () => {
    const plan: Plan = { name: 'logs', tasks: [{ ...special('x/y', 'bigint'), retries: 0 }] }
    await runtime.run(plan, { runId: 'logs' }).result
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(readFileSync(attemptLogFile(runDir(checkpointDir, 'logs'), 'x/y', 1), 'utf8')).toBe('making bigint (attempt 1)\n')
  })
})
