/**
 * Corrupted journals: a finished run's journal (independent tasks) is damaged in many ways,
 * then the run is resumed. Each case must either resume correctly (every task whose
 * COMPLETED record survives is reused, every other one runs once) or fail with
 * ERR_JOURNAL_UNREADABLE before running anything. A resume that re-runs a task whose
 * record survived, or runs anything and then fails, counts as "silent".
 *
 *   node --import tsx scripts/reliability/corrupt-journal.ts [cases per kind=10]
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isTroupeError } from '../../src/runtime/core/errors.ts'
import { journalFile, runDir } from '../../src/runtime/journal/paths.ts'
import { createRuntime } from '../../src/runtime/runtime.ts'
import type { Plan } from '../../src/runtime/plan/plan.ts'
import { MARKER, marks, workspace } from './common.ts'

const perKind = Number(process.argv[2] ?? 10)
const TASKS = 12
const dir = workspace('corrupt')
const checkpointDir = join(dir, '.troupe')
const plan: Plan = { name: 'corrupt', tasks: Array.from({ length: TASKS }, (_, i) => ({ id: `t${i}`, agent: MARKER, input: { file: join(dir, 'marks.txt') } })) }
const runtime = createRuntime({ config: { maxParallel: 4, governor: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 }, checkpoint: { dir: checkpointDir } } })

await runtime.run(plan, { runId: 'original' }).result
const original = readFileSync(journalFile(checkpointDir, 'original'))

const random = (n: number) => Math.floor(Math.random() * n)
const kinds: Record<string, () => Buffer> = {
  truncate: () => original.subarray(0, random(original.length)),
  tornTail: () => Buffer.concat([original, Buffer.from('{"type":"task","id":"t1","ha')]),
  garbageLine: () => insertLine(Buffer.from('#!garbage %% not json')),
  emptyLine: () => insertLine(Buffer.alloc(0)),
  invalidUtf8: () => {
    const copy = Buffer.from(original)
    copy[random(copy.length - 1)] = 0xff
    return copy
  },
  wrongFormat: () => Buffer.from('{"format":"something else"}\n'),
}

function insertLine(line: Buffer): Buffer {
  const newlines: number[] = []
  for (let i = 0; i < original.length; i++) if (original[i] === 0x0a) newlines.push(i)
  const at = newlines[random(newlines.length - 1)]! + 1
  return Buffer.concat([original.subarray(0, at), line, Buffer.from('\n'), original.subarray(at)])
}

/** COMPLETED task records in the complete lines of `bytes` that a reader would accept. */
function survivingCompleted(bytes: Buffer): Set<string> {
  const text = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1).toString('utf8')
  const ids = new Set<string>()
  for (const line of text.split('\n')) {
    try {
      const record = JSON.parse(line) as { type?: string; state?: string; id?: string }
      if (record.type === 'task' && record.state === 'COMPLETED' && record.id) ids.add(record.id)
    } catch {
      // not a record
    }
  }
  return ids
}

const outcome: Record<string, { resumed: number; unreadable: number; silent: number }> = {}
let n = 0
for (const [kind, make] of Object.entries(kinds)) {
  outcome[kind] = { resumed: 0, unreadable: 0, silent: 0 }
  for (let c = 0; c < perKind; c++) {
    const runId = `case-${++n}`
    const damaged = make()
    mkdirSync(runDir(checkpointDir, runId), { recursive: true })
    writeFileSync(journalFile(checkpointDir, runId), damaged)
    const before = marks(dir).length
    try {
      const result = await runtime.run(plan, { runId }).result
      const ran = marks(dir).slice(before)
      const kept = survivingCompleted(damaged)
      const correct = result.status === 'completed' && ran.every((id) => !kept.has(id)) && ran.length === TASKS - kept.size
      outcome[kind]![correct ? 'resumed' : 'silent']++
    } catch (error) {
      const clean = isTroupeError(error, 'ERR_JOURNAL_UNREADABLE') && marks(dir).length === before
      outcome[kind]![clean ? 'unreadable' : 'silent']++
    }
  }
}
await runtime.close()
copyFileSync(journalFile(checkpointDir, 'original'), join(dir, 'original.jsonl'))
console.log(JSON.stringify({ tasks: TASKS, casesPerKind: perKind, outcome }))
