/**
 * The governor's acceptance checks, on this machine, with two external busy-loop processes:
 *   sleep — 40 tasks that sleep 1.5 s, default settings: makespan vs the ideal (1.5 s)
 *   cpu   — 8 CPU-bound tasks at maxParallel 8: peak tasks running at once (≤ free cores)
 *   mem   — memory threshold 1 %, 100 ms samples, 4 × 200 ms tasks: run one at a time from the first
 * Besides the checks: wall time from run() to its result (the makespan starts with the first
 * task, after the agent check), time to the first RUNNING, time ready tasks were held, and the
 * threads of this process at the end (worker threads started and still up).
 * Usage: node --import tsx scripts/governor-acceptance.ts sleep|cpu|mem
 */
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { createRuntime } from '../src/index.ts'

const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures', 'agents')
const which = process.argv[2] ?? 'sleep'
if (!['sleep', 'cpu', 'mem'].includes(which)) throw new Error(`expected sleep, cpu or mem, got ${which}`)
// External load: started through a shell that exits at once, so the busy loops are not in this
// process's tree (troupe counts its descendants as its own load) — as another user's would be.
const busy = [0, 1].map(() => Number(execFileSync('/bin/sh', ['-c', `"${process.execPath}" -e 'for(;;){}' >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim()))
await new Promise((resolve) => setTimeout(resolve, 1500))
try {
  const runtime = createRuntime({
    config: { checkpoint: { enabled: false }, ...(which === 'mem' ? { governor: { memory: { throttlePercent: 1, resumePercent: 1 }, sampleIntervalMs: 100 } } : {}) },
  })
  let running = 0
  let peak = 0
  let firstRunningAt: number | undefined
  runtime.on('task:state', (e) => {
    if (e.state === 'RUNNING') firstRunningAt ??= performance.now()
    if (e.state === 'RUNNING') peak = Math.max(peak, ++running)
    else if (e.previous === 'RUNNING') running--
  })
  const n = which === 'sleep' ? 40 : which === 'cpu' ? 8 : 4
  const agent = which === 'cpu' ? 'spin' : 'sleep'
  const ms = which === 'sleep' ? 1500 : which === 'cpu' ? 400 : 200
  const tasks = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, agent, input: { ms } }))
  const calledAt = performance.now()
  const result = await runtime.run({ name: `acceptance-${which}`, agents: { [agent]: join(fixtures, `${agent}.mjs`) }, tasks, ...(which === 'cpu' ? { maxParallel: 8 } : {}) }).result
  const wallMs = Math.round(performance.now() - calledAt)
  const threads = /^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
  const intervals = Object.values(result.tasks).map((t) => [t.startedAt! - result.startedAt, t.finishedAt! - result.startedAt])
  console.log(
    JSON.stringify({
      check: which,
      status: result.status,
      makespanMs: result.makespanMs,
      wallMs,
      firstRunningMs: firstRunningAt === undefined ? undefined : Math.round(firstRunningAt - calledAt),
      heldMs: result.governor?.heldMs,
      threads: threads === undefined ? undefined : Number(threads),
      ...(which === 'sleep' ? { idealMs: ms, ratioToIdeal: +(result.makespanMs / ms).toFixed(2) } : {}),
      ...(which === 'cpu' ? { sumOfDurationsMs: result.sequentialMs, ratioToSum: +(result.makespanMs / result.sequentialMs).toFixed(2) } : {}),
      peakRunning: peak,
      ...(which === 'mem' ? { intervals, throttleEvents: result.governor?.throttleEvents, samples: result.governor?.samples } : {}),
    }),
  )
  await runtime.close()
} finally {
  for (const pid of busy) process.kill(pid)
}
