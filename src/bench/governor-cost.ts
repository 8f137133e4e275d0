/**
 * What the resource governor costs the dispatch thread, and how fast it reacts.
 *
 *   npx tsx src/bench/governor-cost.ts [--samples N] [--repeats N]
 *
 * 1. Per sample, main-thread busy time (event-loop utilisation) and the longest event-loop
 *    stall, with systeminformation called on the main thread vs through {@link SystemProbe}'s
 *    sampler thread. Samples are 250 ms apart: systeminformation only re-reads /proc/stat
 *    (with a blocking execSync) when its last reading is 200 ms old or more.
 * 2. Throttle reaction: with the real probe already sampling, a run starts CPU-bound tasks
 *    on every core; the time from the first of them to `governor:throttled`, for two intervals.
 * 3. What governing costs a plan that saturates every core by itself: speedup of 8 CPU-bound
 *    tasks at maxParallel = cores, governor off vs threshold vs adaptive (default settings).
 */
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import si from 'systeminformation'
import { createRuntime } from '../index.ts'
import { SystemProbe } from '../runtime/governor/system-probe.ts'

const SPACING_MS = 250
const args = process.argv.slice(2)
const samples = Number(args[args.indexOf('--samples') + 1]) || 40
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'agents')
const spin = join(fixtures, 'spin.mjs')
const sleep = join(fixtures, 'sleep.mjs')

interface Cost {
  readonly label: string
  readonly busyMsPerSample: number
  readonly maxStallMs: number
  readonly p99StallMs: number
}

async function measure(label: string, sample: () => Promise<unknown>): Promise<Cost> {
  await sample()
  await wait(SPACING_MS)
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const before = performance.eventLoopUtilization()
  for (let i = 0; i < samples; i++) {
    await sample()
    await wait(SPACING_MS)
  }
  const elu = performance.eventLoopUtilization(before)
  delay.disable()
  return {
    label,
    busyMsPerSample: elu.active / samples,
    maxStallMs: delay.max / 1e6,
    p99StallMs: delay.percentile(99) / 1e6,
  }
}

/**
 * The governor is already sampling (a first run keeps it busy with an idle task) when a
 * second run starts CPU-bound tasks on every core; reaction = first spin start → throttled.
 */
async function reaction(sampleIntervalMs: number): Promise<{ cpuBefore: number; reactionMs: number | undefined; startedBeforeThrottle: number }> {
  const cores = availableParallelism()
  const runtime = createRuntime({
    config: {
      checkpoint: { enabled: false },
      maxParallel: cores * 2,
      pool: { minThreads: cores * 2 + 1, maxThreads: cores * 2 + 1 },
      governor: { sampleIntervalMs, cpu: { throttlePercent: 80, resumePercent: 60 } },
    },
  })
  let lastCpu = NaN
  let firstStart: number | undefined
  let throttledAt: number | undefined
  let started = 0
  runtime.on('governor:sample', (e) => (lastCpu = e.cpuPercent))
  runtime.on('governor:throttled', () => (throttledAt ??= performance.now()))
  const warm = runtime.run({ name: 'warm', tasks: [{ id: 'idle', agent: sleep, input: { ms: 2500 + 6 * sampleIntervalMs } }] })
  // Readings flowing, nothing CPU-bound yet; on a shared machine, wait for others' load to drop.
  let throttled = false
  runtime.on('governor:sample', (e) => (throttled = e.throttled !== undefined))
  while (Number.isNaN(lastCpu)) await wait(20)
  await wait(3 * sampleIntervalMs)
  for (let waited = 0; throttled && waited < 10_000; waited += 50) await wait(50)
  const cpuBefore = lastCpu
  const busy = throttled
  throttledAt = undefined
  const hot = runtime.run({ name: 'hot', tasks: Array.from({ length: cores * 4 }, (_, i) => ({ id: `spin-${i}`, agent: spin, input: { ms: 1000 } })) })
  hot.on('task:state', (e) => {
    if (e.state !== 'RUNNING') return
    firstStart ??= performance.now()
    if (throttledAt === undefined) started++
  })
  await Promise.all([warm.result, hot.result])
  await runtime.close()
  return {
    cpuBefore: Math.round(cpuBefore),
    reactionMs: busy || throttledAt === undefined || firstStart === undefined ? undefined : Math.round(throttledAt - firstStart),
    startedBeforeThrottle: started,
  }
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const probe = new SystemProbe()
await probe.sample()
let postMs = 0
let roundTripMs = 0
for (let i = 0; i < samples; i++) {
  await wait(SPACING_MS)
  const start = performance.now()
  const reply = probe.sample()
  postMs += performance.now() - start
  await reply
  roundTripMs += performance.now() - start
}
const costs = [
  await measure('idle (timers only)', async () => {}),
  await measure('SystemProbe (sampler thread)', () => probe.sample()),
  await measure('systeminformation on the main thread', () => Promise.all([si.currentLoad(), si.mem()])),
]
await probe.close()
console.log(`Cost per governor sample on the dispatch thread (${samples} samples, ${SPACING_MS} ms apart; load average ${loadavg()[0]!.toFixed(1)}):`)
for (const c of costs) {
  console.log(`  ${c.label.padEnd(40)} busy ${c.busyMsPerSample.toFixed(3)} ms/sample   stall max ${c.maxStallMs.toFixed(2)} ms   p99 ${c.p99StallMs.toFixed(2)} ms`)
}
console.log(
  `  SystemProbe request on the main thread: ${((postMs / samples) * 1000).toFixed(0)} µs/sample; reply after ${(roundTripMs / samples).toFixed(2)} ms, spent in the sampler thread`,
)
const repeats = Number(args[args.indexOf('--repeats') + 1]) || 5
console.log(`Throttle reaction (CPU-bound tasks on every core, cpu.throttlePercent 80; ${repeats} repeats; load average ${loadavg()[0]!.toFixed(1)}):`)
for (const interval of [500, 100]) {
  const runs = []
  for (let i = 0; i < repeats; i++) runs.push(await reaction(interval))
  const times = runs.flatMap((r) => (r.reactionMs === undefined ? [] : [r.reactionMs])).sort((a, b) => a - b)
  console.log(
    `  sampleIntervalMs ${String(interval).padStart(3)}: throttled after median ${times[Math.floor(times.length / 2)] ?? '-'} ms, max ${times.at(-1) ?? '-'} ms; ${runs.map((r) => r.startedBeforeThrottle).join('/')} tasks started before (each: ${runs.map((r) => (r.reactionMs === undefined ? `not measured (machine busy, CPU ${r.cpuBefore} %)` : `${r.reactionMs} ms from CPU ${r.cpuBefore} %`)).join(', ')})`,
  )
}

console.log(`A plan that saturates every core by itself (${availableParallelism() * 4} × 1 s CPU-bound tasks, maxParallel ${availableParallelism()}, default thresholds):`)
for (const governor of [{ enabled: false }, { mode: 'threshold' as const }, { mode: 'adaptive' as const }]) {
  const runtime = createRuntime({ config: { maxParallel: availableParallelism(), checkpoint: { enabled: false }, governor } })
  const tasks = Array.from({ length: availableParallelism() * 4 }, (_, i) => ({ id: `t${i}`, agent: spin, input: { ms: 1000 } }))
  const result = await runtime.run({ name: 'saturate', tasks }).result
  await runtime.close()
  const g = result.governor
  console.log(
    `  governor ${'enabled' in governor ? 'off' : governor.mode}: speedup ${result.speedup.toFixed(2)}x${g ? ` (throttled ${g.throttledMs} ms${g.concurrency ? `, concurrency ${g.concurrency.map((c) => c.limit).join('→')}` : ''})` : ''}`,
  )
}
