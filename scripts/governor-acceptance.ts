/**
 * The governor's acceptance checks, on this machine, with two external busy-loop processes:
 *   sleep — 40 tasks that sleep 1.5 s, default settings: makespan vs the ideal (1.5 s)
 *   cpu   — 8 CPU-bound tasks at maxParallel 8: peak tasks running at once (≤ free cores)
 *   mem   — memory threshold 1 %, 100 ms samples, 4 × 200 ms tasks: run one at a time from the first
 * Usage: node --import tsx scripts/governor-acceptance.ts sleep|cpu|mem
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createRuntime } from '../src/index.ts'

const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures', 'agents')
const which = process.argv[2] ?? 'sleep'
if (!['sleep', 'cpu', 'mem'].includes(which)) throw new Error(`expected sleep, cpu or mem, got ${which}`)
const busy = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))
await new Promise((resolve) => setTimeout(resolve, 1500))
try {
  const runtime = createRuntime({
    config: { checkpoint: { enabled: false }, ...(which === 'mem' ? { governor: { memory: { throttlePercent: 1, resumePercent: 1 }, sampleIntervalMs: 100 } } : {}) },
  })
  let running = 0
  let peak = 0
  runtime.on('task:state', (e) => {
    if (e.state === 'RUNNING') peak = Math.max(peak, ++running)
    else if (e.previous === 'RUNNING') running--
  })
  const n = which === 'sleep' ? 40 : which === 'cpu' ? 8 : 4
  const agent = which === 'cpu' ? 'spin' : 'sleep'
  const ms = which === 'sleep' ? 1500 : which === 'cpu' ? 400 : 200
  const tasks = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, agent, input: { ms } }))
  const result = await runtime.run({ name: `acceptance-${which}`, agents: { [agent]: join(fixtures, `${agent}.mjs`) }, tasks, ...(which === 'cpu' ? { maxParallel: 8 } : {}) }).result
  const intervals = Object.values(result.tasks).map((t) => [t.startedAt! - result.startedAt, t.finishedAt! - result.startedAt])
  console.log(
    JSON.stringify({
      check: which,
      status: result.status,
      makespanMs: result.makespanMs,
      ...(which === 'sleep' ? { idealMs: ms, ratioToIdeal: +(result.makespanMs / ms).toFixed(2) } : {}),
      ...(which === 'cpu' ? { sumOfDurationsMs: result.sequentialMs, ratioToSum: +(result.makespanMs / result.sequentialMs).toFixed(2) } : {}),
      peakRunning: peak,
      ...(which === 'mem' ? { intervals, throttleEvents: result.governor?.throttleEvents, samples: result.governor?.samples } : {}),
    }),
  )
  await runtime.close()
} finally {
  for (const child of busy) child.kill()
}
