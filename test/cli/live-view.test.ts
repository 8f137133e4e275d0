import { fileURLToPath } from 'node:url'
import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it } from 'vitest'
import { Writable } from 'node:stream'
import { LiveView, renderLiveView } from '../../src/cli/live-view.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import type { Run } from '../../src/runtime/run.ts'
import { RunMonitor } from '../../src/monitor/run-monitor.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'

const plan = compilePlan(
  {
    name: 'live',
    agents: { w: './echo.mjs' },
    tasks: Array.from({ length: 12 }, (_, i) => ({ id: `t${i}`, agent: 'w', estimateMs: 1000 })),
  },
  { baseDir: fileURLToPath(new URL('../fixtures/agents/', import.meta.url)) },
)

function running(count: number) {
  const m = new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => 12, startedAt: 0, now: () => 500 })
  for (let i = 0; i < count; i++) m.taskState({ runId: 'r', taskId: `t${i}`, agent: 'w', state: 'RUNNING', previous: 'QUEUED', attempt: 1, at: 0 })
  m.taskProgress({ runId: 'r', taskId: 't0', attempt: 1, fraction: 0.5, message: 'halfway through a long message that goes on and on and on', at: 400 })
  return m.snapshot()
}

describe('renderLiveView', () => {
  it('counts tasks awaiting approval and gives the exact command that approves each', () => {
    const m = new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => 12, startedAt: 0, now: () => 500 })
    m.taskState({ runId: 'r', taskId: 't3', agent: 'w', state: 'AWAITING_APPROVAL', previous: 'PENDING', attempt: 0, at: 0 })
    const text = stripVTControlCharacters(renderLiveView(m.snapshot(), { status: 'n/a' }, 120))
    expect(text).toContain('1 awaiting approval')
    expect(text).toContain('awaiting approval: t3 — troupe approve r t3')
  })

  it('shows a line per running agent with its progress, message and elapsed time', () => {
    const lines = stripVTControlCharacters(renderLiveView(running(2), { status: 'n/a' }, 100)).split('\n')
    expect(lines[0]).toContain('2 running')
    expect(lines[2]).toMatch(/^ {2}t0 +█{8}░{8} +50% +500 ms {2}w: halfway/)
    expect(lines[3]).toMatch(/^ {2}t1 +░{16} +0% +500 ms {2}w$/)
  })

  it('keeps every line within the terminal width', () => {
    const lines = stripVTControlCharacters(renderLiveView(running(2), { status: 'n/a' }, 60)).split('\n')
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(60)
  })

  it('folds running agents beyond the terminal height into one line', () => {
    const lines = stripVTControlCharacters(renderLiveView(running(12), { status: 'n/a' }, 100, 10)).split('\n')
    expect(lines.length).toBeLessThanOrEqual(9)
    expect(lines.at(-1)).toMatch(/and \d+ more running/)
  })

  it('shows no governor line before the governor has reported (regression: "governor: n/a" clutter)', () => {
    const lines = stripVTControlCharacters(renderLiveView(running(2), { status: 'n/a' }, 100)).split('\n')
    expect(lines.filter((l) => l.includes('governor'))).toEqual([])
  })

  it('counts completed tasks taken from the task cache', () => {
    const m = new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => 12, startedAt: 0, now: () => 500 })
    for (const [i, cached] of [[0, true], [1, true], [2, false]] as const) {
      m.taskState({ runId: 'r', taskId: `t${i}`, agent: 'w', state: 'RUNNING', previous: 'QUEUED', attempt: 1, at: 0 })
      m.taskState({ runId: 'r', taskId: `t${i}`, agent: 'w', state: 'COMPLETED', previous: 'RUNNING', attempt: 1, at: 10, ...(cached ? { cached } : {}) })
    }
    expect(stripVTControlCharacters(renderLiveView(m.snapshot(), { status: 'n/a' }, 120))).toContain('3 completed (2 cached)')
  })

  it('shows a rate-limit pause and when it resumes', () => {
    const m = new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => 12, startedAt: 0, now: () => 500 })
    m.limitPaused({ runId: 'r', taskId: 't0', limits: ['llm'], until: 3500, at: 400 })
    const text = stripVTControlCharacters(renderLiveView(m.snapshot(), { status: 'n/a' }, 120))
    expect(text).toContain('rate limit: llm paused — resumes in 3.00 s')
  })

  it('strips escape sequences from task ids and progress messages (regression: an agent retitled and cleared the terminal)', () => {
    const m = new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => 12, startedAt: 0, now: () => 500 })
    m.taskState({ runId: 'r', taskId: 't0', agent: 'w', state: 'RUNNING', previous: 'QUEUED', attempt: 1, at: 0 })
    m.taskProgress({ runId: 'r', taskId: 't0', attempt: 1, fraction: 0.5, message: '\u001b]0;pwned\u0007\u001b[2J\r✓ completed fake', at: 400 })
    const text = renderLiveView(m.snapshot(), { status: 'n/a' }, 200)
    expect(text).not.toMatch(/\u001b\]|\u001b\[2J|\r/)
    expect(stripVTControlCharacters(text)).toContain('w: �✓ completed fake')
  })

  it('shows the governor throttling with its readings and threshold', () => {
    const text = stripVTControlCharacters(
      renderLiveView(running(1), { status: 'throttled', reason: 'cpu', cpuPercent: 95, memoryPercent: 40, thresholds: { cpu: { throttlePercent: 90, resumePercent: 75 }, memory: { throttlePercent: 90, resumePercent: 80 } } }, 120),
    )
    expect(text).toContain('governor: THROTTLED on cpu — cpu 95 % (throttle ≥ 90 %), memory 40 %')
  })

  it("says why tasks wait: the governor's last hold, while some are queued", () => {
    const m = new RunMonitor({ runId: 'r', plan, strategy: 'concurrent', maxParallel: () => 12, startedAt: 0, now: () => 500 })
    m.taskState({ runId: 'r', taskId: 't0', agent: 'w', state: 'RUNNING', previous: 'QUEUED', attempt: 1, at: 0 })
    m.taskState({ runId: 'r', taskId: 't1', agent: 'w', state: 'QUEUED', previous: 'PENDING', attempt: 1, at: 0 })
    const governor = { status: 'ok', cpuPercent: 100, held: { message: 'held: w needs ~1.0 CPU, 0.0 free', at: 400 } } as const
    expect(stripVTControlCharacters(renderLiveView(m.snapshot(), governor, 120))).toContain('last hold: held: w needs ~1.0 CPU, 0.0 free')
    expect(stripVTControlCharacters(renderLiveView(running(1), governor, 120))).not.toContain('last hold')
  })

  it('prints ctx.log lines above the live block in TTY mode (regression: they vanished)', async () => {
    await withProgressRun('logs', (writes, run, runtime) => {
      const view = new LiveView(runtime, run, { stream: fakeTty(writes), intervalMs: 10, formatLog: (e) => `LOG ${e.taskId}: ${e.message}` })
      return async () => {
        view.stop()
        expect(stripVTControlCharacters(writes.join(''))).toContain('LOG p: done')
      }
    })
  })

  it('replaces the live block with the summary in one write (regression: a frame in tmux showed neither)', async () => {
    await withProgressRun('summary', (writes, run, runtime) => {
      const view = new LiveView(runtime, run, { stream: fakeTty(writes), intervalMs: 10 })
      return async () => {
        await new Promise((resolve) => setTimeout(resolve, 30))
        const before = writes.length
        view.stop('SUMMARY TABLE')
        const last = writes.slice(before)
        expect(last).toHaveLength(1)
        expect(last[0]).toMatch(/\u001b\[2K[\s\S]*SUMMARY TABLE\n$/)
      }
    })
  })
})

/** A 100×24 terminal that records each write (a corked batch is one write). */
function fakeTty(writes: string[]): NodeJS.WriteStream {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk.toString('utf8'))
      done()
    },
    writev(chunks, done) {
      writes.push(chunks.map((c) => c.chunk.toString()).join(''))
      done()
    },
  })
  return Object.assign(stream, { isTTY: true, columns: 100, rows: 24 }) as unknown as NodeJS.WriteStream
}

/**
 * Runs the progress agent once under a view `watch` sets up; `watch`'s returned check runs
 * after the run ended, before the runtime closes.
 */
async function withProgressRun(
  name: string,
  watch: (writes: string[], run: Run, runtime: Runtime) => () => Promise<void>,
): Promise<void> {
  const runtime = createRuntime({ config: { maxParallel: 1, pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
  try {
    const agent = fileURLToPath(new URL('../fixtures/agents/progress.mjs', import.meta.url))
    const run = runtime.run({ name, tasks: [{ id: 'p', agent }] })
    const check = watch([], run, runtime)
    await run.result
    await check()
  } finally {
    await runtime.close({ force: true })
  }
}
