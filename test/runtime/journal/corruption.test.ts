import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTroupeError } from '../../../src/runtime/core/errors.ts'
import { journalFile, runDir } from '../../../src/runtime/journal/paths.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

/**
 * The corruption suite (issue 21 item 5): a finished run's journal — independent tasks, one
 * of which adds two tasks at run time — is damaged in 24 ways, then the run is resumed.
 * Each case must either be refused with ERR_JOURNAL_UNREADABLE before anything runs, or
 * resume correctly: every task whose COMPLETED record survived is reused, every other task
 * runs exactly once, the added tasks are all there. Anything else is a silent wrong outcome.
 */

const agent = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'agents', name)
const IDS = ['a', 'b', 'c', 'd', 's', 's1', 's2'] as const

let root: string
let checkpointDir: string
let runtime: Runtime
let marks: string
let original: string

const plan = (): Plan => ({
  name: 'corrupt',
  tasks: [
    ...['a', 'b', 'c', 'd'].map((id) => ({ id, agent: agent('marker.mjs'), input: { file: marks } })),
    {
      id: 's',
      agent: agent('spawn.mjs'),
      input: { children: ['s1', 's2'].map((id) => ({ id, agent: agent('marker.mjs'), input: { file: marks } })) },
    },
  ],
})

const runs = (): Record<string, number> => {
  const lines = existsSync(marks) ? readFileSync(marks, 'utf8').split('\n') : []
  return Object.fromEntries(IDS.map((id) => [id, lines.filter((line) => line === id).length]))
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'troupe-corrupt-'))
  checkpointDir = join(root, 'checkpoints')
  marks = join(root, 'marks.txt')
  runtime = createRuntime({ config: { maxParallel: 4, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { dir: checkpointDir } } })
  const first = await runtime.run(plan(), { runId: 'original' }).result
  expect(first.status).toBe('completed')
  expect(Object.keys(first.tasks).sort()).toEqual([...IDS].sort())
  original = readFileSync(journalFile(checkpointDir, 'original'), 'utf8')
}, 60_000)

afterAll(async () => {
  await runtime.close()
  rmSync(root, { recursive: true, force: true })
})

/** The original journal's lines (without newlines) and the index of the first line matching `pattern`. */
const lines = () => original.split('\n').slice(0, -1)
const at = (pattern: RegExp) => lines().findIndex((line) => pattern.test(line))
const join_ = (list: readonly string[]) => `${list.join('\n')}\n`
const without = (index: number) => join_(lines().filter((_, i) => i !== index))
const swap = (i: number, j: number) => {
  const list = lines()
  ;[list[i], list[j]] = [list[j]!, list[i]!]
  return join_(list)
}
const edit = (index: number, from: string | RegExp, to: string) => join_(lines().map((line, i) => (i === index ? line.replace(from, to) : line)))
const task = (id: string) => at(new RegExp(`"type":"task","id":"${id}"`))

const cases: Record<string, () => string | Buffer> = {
  'deleted spawn record': () => without(at(/"type":"spawn"/)),
  'deleted task record': () => without(task('b')),
  'deleted run-start': () => without(0),
  'deleted run-end (a crash before it)': () => without(lines().length - 1),
  'truncated mid-file, inside a line': () => original.slice(0, Math.floor(original.length / 2)),
  'truncated just after the spawn record': () => join_(lines().slice(0, at(/"type":"spawn"/) + 1)),
  'truncated to nothing': () => '',
  'a torn last line': () => `${original}{"seq":${lines().length + 1},"type":"task","id":"a","ha`,
  'edited output value': () => edit(task('a'), /"taskId":"a"/, '"taskId":"z"'),
  'edited state': () => edit(task('c'), '"COMPLETED"', '"FAILED"'),
  'edited hash': () => edit(task('d'), /"hash":"./, '"hash":"X'),
  'edited spawned task input': () => edit(at(/"type":"spawn"/), /"id":"s2"/, '"id":"s3"'),
  'edited sequence number': () => edit(task('a'), /^\{"seq":\d+/, '{"seq":99'),
  'checksum removed': () => edit(task('b'), /,"crc":"[0-9a-f]{8}"\}$/, '}'),
  'two records swapped': () => swap(task('a'), task('b')),
  'first two lines swapped': () => swap(0, 1),
  'a line duplicated': () => join_(lines().flatMap((line, i) => (i === task('c') ? [line, line] : [line]))),
  'the last line duplicated': () => join_([...lines(), lines().at(-1)!]),
  'a line from another journal spliced in': () => join_([...lines().slice(0, 2), lines()[1]!.replace('"seq":2', '"seq":3'), ...lines().slice(2)]),
  'a garbage line': () => join_([...lines().slice(0, 2), '#!garbage %% not json', ...lines().slice(2)]),
  'an empty line': () => join_([...lines().slice(0, 2), '', ...lines().slice(2)]),
  'invalid UTF-8 in a whole line': () => {
    const bytes = Buffer.from(original)
    bytes[bytes.indexOf('"corrupt"') + 2] = 0xff
    return bytes
  },
  'zeroed tail block': () => Buffer.concat([Buffer.from(original.slice(0, original.length - 40)), Buffer.alloc(40)]),
  'legacy journal without seals': () => join_(lines().map((line) => line.replace(/^\{"seq":\d+,/, '{').replace(/,"crc":"[0-9a-f]{8}"\}$/, '}'))),
}

/** Ids whose COMPLETED task record survived as a whole line of the damaged text. */
function survivors(text: string): Set<string> {
  const out = new Set<string>()
  for (const line of text.split('\n').slice(0, -1)) {
    try {
      const record = JSON.parse(line) as { type?: string; id?: string; state?: string }
      if (record.type === 'task' && record.state === 'COMPLETED') out.add(record.id!)
    } catch {
      // not a record
    }
  }
  return out
}

describe('a damaged journal, resumed', () => {
  it('has 24 cases', () => expect(Object.keys(cases)).toHaveLength(24))

  let n = 0
  for (const [name, damage] of Object.entries(cases)) {
    const runId = `case-${++n}`
    it(`${name}: refused with ERR_JOURNAL_UNREADABLE, or resumed correctly`, { timeout: 60_000 }, async () => {
      const damaged = damage()
      mkdirSync(runDir(checkpointDir, runId), { recursive: true })
      writeFileSync(journalFile(checkpointDir, runId), damaged)
      const before = runs()
      let run
      try {
        run = runtime.run(plan(), { runId })
      } catch (error) {
        expect(isTroupeError(error) && error.code, String(error)).toBe('ERR_JOURNAL_UNREADABLE')
        expect((error as Error).message).toMatch(/journal\.jsonl/)
        expect(runs()).toEqual(before)
        return
      }
      const result = await run.result
      const kept = survivors(damaged.toString())
      expect(result.status).toBe('completed')
      expect(Object.keys(result.tasks).sort()).toEqual([...IDS].sort())
      const after = runs()
      for (const id of IDS) {
        // The spawner leaves no mark: whether it was reused is in its result.
        if (id === 's') expect(Boolean(result.tasks.s!.reused), 'the spawner reused').toBe(kept.has('s'))
        else expect(after[id]! - before[id]!, `runs of ${id}`).toBe(kept.has(id) ? 0 : 1)
      }
    })
  }
})
