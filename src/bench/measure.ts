import { Bench } from 'tinybench'
import { summarize, type SampleSummary } from './stats.ts'

/** One thing to time, e.g. "the plan at maxParallel 1". */
export interface Variant {
  readonly name: string
  /** One repetition. Throwing aborts the measurement (a failed run is not a sample). */
  run(): Promise<unknown>
}

export interface MeasureOptions {
  /** Timed repetitions of every variant. */
  readonly rounds: number
  /** Untimed repetitions first (thread start-up, module loading, JIT). @default 1 */
  readonly warmupRounds?: number
}

/**
 * Times variants interleaved: round r runs every variant once, in alternating order (ABBA),
 * so that drift in machine load hits each variant alike instead of whichever ran last.
 * Each round is a tinybench Bench of one iteration per variant; returns per-variant summaries.
 */
export async function measureInterleaved(variants: readonly Variant[], options: MeasureOptions): Promise<Map<string, SampleSummary>> {
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]))
  const warmup = options.warmupRounds ?? 1
  for (let round = 0; round < warmup + options.rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse()
    const bench = new Bench({ iterations: 1, time: 0, warmup: false, throws: true })
    // `async: true` spares tinybench a probing call to find out whether the function is async.
    for (const variant of order) bench.add(variant.name, () => variant.run(), { async: true })
    const tasks = await bench.run()
    if (round < warmup) continue
    for (const task of tasks) {
      const result = task.result
      if (result.state !== 'completed') throw new Error(`bench variant "${task.name}" did not complete: ${result.state}`)
      samples.get(task.name)!.push(result.latency.mean)
    }
  }
  return new Map([...samples].map(([name, values]) => [name, summarize(values)]))
}
