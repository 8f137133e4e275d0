import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it } from 'vitest'
import { formatSummary, plural } from '../../src/cli/summary.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'

function result(overrides: Partial<RunResult> = {}, count = 19): RunResult {
  const tasks = Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`task-${i}`, { state: 'COMPLETED', attempts: 1, startedAt: 0, finishedAt: 100, durationMs: 100 }]),
  )
  return {
    runId: 'r1',
    name: 'p',
    status: 'completed',
    strategy: 'concurrent',
    maxParallel: 4,
    startedAt: 0,
    finishedAt: 1000,
    makespanMs: 1000,
    sequentialMs: 1900,
    criticalPathMs: 950,
    lowerBoundMs: 950,
    speedup: 1.9,
    efficiency: 0.475,
    parallelization: 'PARALLEL',
    totals: { tasks: count, completed: count, failed: 0, skipped: 0, cancelled: 0, reused: 0, cached: 0 },
    tasks,
    ...overrides,
  } as RunResult
}

const plain = (text: string) => stripVTControlCharacters(text).split('\n')

describe('formatSummary', () => {
  it('draws one line per task, without rules between rows (regression: 19 tasks took 41 lines)', () => {
    const lines = plain(formatSummary(result()))
    expect(lines.filter((l) => l.startsWith('task-'))).toHaveLength(19)
    expect(lines.length).toBeLessThanOrEqual(19 + 6)
    expect(lines.some((l) => /^[─┼├┤-]{5,}/.test(l))).toBe(false)
  })

  it('has no error column when no task has an error (regression: an empty 60-column error column)', () => {
    const lines = plain(formatSummary(result()))
    expect(lines[0]).not.toContain('error')
    expect(Math.max(...lines.filter((l) => l.startsWith('task')).map((l) => l.length))).toBeLessThan(40)
  })

  it('keeps every table line within the terminal width, cutting long errors with …', () => {
    const r = result({
      status: 'failed',
      tasks: { [`t-${'x'.repeat(100)}`]: { state: 'FAILED', attempts: 2, durationMs: 5, error: { code: 'ERR_TASK_FAILED', message: 'boom '.repeat(100) } } } as RunResult['tasks'],
    })
    const lines = plain(formatSummary(r, { columns: 80 }))
    const table = lines.slice(0, 2)
    for (const line of table) expect(line.length).toBeLessThanOrEqual(80)
    expect(table[1]).toContain('…')
  })

  it('strips escape sequences from task ids and errors (regression: fake "✓ completed" lines in the table)', () => {
    const r = result({
      tasks: { 'a\u001b[2J': { state: 'FAILED', attempts: 1, error: { code: 'ERR_TASK_FAILED', message: 'x\r\u001b[32m✓ completed b' } } } as RunResult['tasks'],
    })
    const text = formatSummary(r, { columns: 200 })
    expect(stripVTControlCharacters(text)).toBe(text.replace(/\u001b\[[0-9;]*m/g, ''))
    expect(text).not.toContain('\r')
  })

  it('explains a PARALLEL verdict with a speedup below 1 instead of contradicting it', () => {
    const text = plain(formatSummary(result({ speedup: 0.91, sequentialMs: 910, makespanMs: 1000, criticalPathMs: 900, lowerBoundMs: 900 }))).join('\n')
    expect(text).toMatch(/verdict PARALLEL: as parallel as the dependencies allow/)
  })

  it('shows no governor line when it took no samples (regression: "peak CPU 0 % over 0 samples")', () => {
    const r = result({ governor: { mode: 'threshold', throttledMs: 0, throttleEvents: 0, peakCpuPercent: 0, peakMemoryMb: 0, samples: 0 } } as Partial<RunResult>)
    expect(plain(formatSummary(r)).some((l) => l.startsWith('governor'))).toBe(false)
  })

  it('says how to resume a run that did not complete', () => {
    const text = plain(formatSummary(result({ status: 'cancelled' }), { resumeCommand: 'troupe run plan.yaml --run-id r1' })).join('\n')
    expect(text).toContain('resume: troupe run plan.yaml --run-id r1')
  })

  it('does not offer to resume a completed run', () => {
    const text = plain(formatSummary(result(), { resumeCommand: 'troupe run plan.yaml --run-id r1' })).join('\n')
    expect(text).not.toContain('resume:')
  })

  it("shows a failed task's stderr tail under its error (regression: the tail never reached the summary)", () => {
    const message = 'Agent "tsc" exited with code 2; stderr:\nsrc/a.ts(3,1): error TS2304: Cannot find name foo\n'
    const error = { code: 'ERR_COMMAND_FAILED', message }
    const r = result({ status: 'failed', tasks: { check: { state: 'FAILED', attempts: 1, error } } as RunResult['tasks'] })
    const lines = plain(formatSummary(r, { columns: 80 }))
    expect(lines).toContain('✗ check: ERR_COMMAND_FAILED Agent "tsc" exited with code 2')
    expect(lines).toContain('    │ src/a.ts(3,1): error TS2304: Cannot find name foo')
  })

  it('keeps error codes whole at 60 columns (regression: ERR_COMMAND_F…)', () => {
    const r = result({
      status: 'failed',
      tasks: {
        'typecheck-everything': { state: 'FAILED', attempts: 1, durationMs: 5, error: { code: 'ERR_COMMAND_FAILED', message: 'x' } },
        publish: { state: 'SKIPPED', attempts: 0, error: { code: 'ERR_DEPENDENCY_FAILED', message: 'y' } },
      } as RunResult['tasks'],
    })
    const text = plain(formatSummary(r, { columns: 60 })).join('\n')
    expect(text).toContain('ERR_COMMAND_FAILED')
    expect(text).not.toMatch(/ERR_\w*…/)
    expect(text).toMatch(/^typecheck-everything /m)
  })

  it('wraps the run line at a word boundary at 60 columns (regression: "8/1⏎0 completed")', () => {
    const totals = { tasks: 10, completed: 8, failed: 2, skipped: 0, cancelled: 0, reused: 0, cached: 0 }
    const r = result({ runId: 'checks-2026-12-04T13-08-28-945Z-9f0abee1', status: 'failed', totals })
    const lines = plain(formatSummary(r, { columns: 60 }))
    for (const line of lines) expect(line.length).toBeLessThan(60)
    expect(lines.join('\n')).toMatch(/(^|\s)8\/10\s+tasks completed,/m)
  })

  it('breaks a long resume command between arguments with shell continuations, never inside one', () => {
    const command = 'troupe run examples/checks/plan.yaml --run-id checks-2026-12-04T13-08-28-945Z-9f0abee1'
    const lines = plain(formatSummary(result({ status: 'failed' }), { columns: 60, resumeCommand: command }))
    const at = lines.indexOf('resume:')
    expect(lines.slice(at + 1, at + 3)).toEqual([
      '  troupe run examples/checks/plan.yaml \\',
      '    --run-id checks-2026-12-04T13-08-28-945Z-9f0abee1',
    ])
  })

  it('marks a task taken from the task cache "(cached)" and counts cached tasks', () => {
    const r = result({ totals: { tasks: 2, completed: 2, failed: 0, skipped: 0, cancelled: 0, reused: 0, cached: 1 } }, 2)
    const tasks = { ...r.tasks, 'task-0': { ...r.tasks['task-0']!, cached: true } }
    const lines = plain(formatSummary({ ...r, tasks }))
    expect(lines.find((l) => l.startsWith('task-0'))).toMatch(/COMPLETED \(cached\)/)
    expect(lines.find((l) => l.startsWith('task-1'))).not.toContain('cached')
    expect(lines.join(' ')).toContain('0 cancelled, 1 cached')
  })

  it('says how many repairs a task took', () => {
    const r = result({}, 3)
    const repair = { attempt: 1, reason: 'verify' as const, detail: 'exit 1' }
    const tasks = { ...r.tasks, 'task-0': { ...r.tasks['task-0']!, repairs: [repair] }, 'task-1': { ...r.tasks['task-1']!, repairs: [repair, repair] } }
    const lines = plain(formatSummary({ ...r, tasks }))
    expect(lines.find((l) => l.startsWith('task-0'))).toMatch(/COMPLETED \(1 repair\)/)
    expect(lines.find((l) => l.startsWith('task-1'))).toMatch(/COMPLETED \(2 repairs\)/)
    expect(lines.find((l) => l.startsWith('task-2'))).not.toContain('repair')
  })

  it('says "1 task", not "1 tasks"', () => {
    const totals = { tasks: 1, completed: 1, failed: 0, skipped: 0, cancelled: 0, reused: 0, cached: 0 }
    const text = plain(formatSummary(result({ totals }, 1))).join('\n')
    expect(text).toContain('1/1 task completed')
  })
})

describe('plural', () => {
  it('adds es after ch, sh, s and x, s otherwise, nothing for one', () => {
    expect([plural(2, 'branch'), plural(2, 'worktree'), plural(1, 'branch'), plural(0, 'run')]).toEqual(['2 branches', '2 worktrees', '1 branch', '0 runs'])
  })
})
