/**
 * Soak: many tasks with random faults (throws, worker exits, uncaught exceptions, hangs cut
 * by the attempt timeout), in several runs at once on one runtime, with the journal on.
 * Checks that nothing is lost: every task ends in a terminal state, a task is SKIPPED
 * exactly when a dependency did not complete, and the totals add up.
 *
 *   npx tsx src/bench/soak.ts [tasksPerRun=500] [runs=4] [seed=1]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRuntime, type Plan, type RunResult } from '../index.ts'
import { mulberry32 } from './random-dag.ts'

const FAULTS = [
  ['throw', 0.05],
  ['exit', 0.02],
  ['uncaught', 0.02],
  ['hang', 0.01],
] as const

export interface SoakReport {
  readonly tasks: number
  readonly runs: number
  readonly wallMs: number
  readonly injected: Record<string, number>
  readonly states: Record<string, number>
  readonly errors: Record<string, number>
  readonly attempts: number
  /** Tasks not in a terminal state, or whose state contradicts their dependencies'. Must be 0. */
  readonly lost: number
  readonly totalsAddUp: boolean
}

/**
 * The soak agent, written out as a plain `.mjs` so that threads replaced after a crash load
 * it at native speed: fails the way `input.fault` says, or succeeds after `input.ms`.
 * `hang` never yields, so only the attempt timeout (thread termination) stops it.
 */
const FAULT_AGENT = `export default async (input) => {
  if (input.fault === 'throw') throw new Error('soak: thrown')
  if (input.fault === 'exit') process.exit(7)
  if (input.fault === 'uncaught') {
    setTimeout(() => { throw new Error('soak: uncaught') }, 0)
    return new Promise(() => {})
  }
  if (input.fault === 'hang') for (;;) {}
  await new Promise((resolve) => setTimeout(resolve, input.ms ?? 0))
  return { ok: true }
}
`

export async function soak(tasksPerRun = 500, runs = 4, seed = 1): Promise<SoakReport> {
  const next = mulberry32(seed)
  const workDir = mkdtempSync(join(tmpdir(), 'troupe-soak-'))
  const agent = join(workDir, 'fault.mjs')
  writeFileSync(agent, FAULT_AGENT)
  const injected: Record<string, number> = { none: 0, throw: 0, exit: 0, uncaught: 0, hang: 0 }
  const plans: Plan[] = Array.from({ length: runs }, (_, r) => ({
    name: `soak-${r}`,
    tasks: Array.from({ length: tasksPerRun }, (_, i) => {
      let roll = next()
      let fault: keyof typeof injected = 'none'
      for (const [name, p] of FAULTS) {
        if (roll < p) {
          fault = name
          break
        }
        roll -= p
      }
      injected[fault]!++
      const deps = i === 0 ? [] : [...new Set(Array.from({ length: Math.floor(next() * 3) }, () => `t${Math.floor(next() * i)}`))]
      const timeout = fault === 'hang' ? { timeoutMs: 300 } : {}
      return { id: `t${i}`, agent, input: { fault, ms: Math.floor(next() * 3) }, dependsOn: deps, retries: next() < 0.3 ? 1 : 0, ...timeout }
    }),
  }))
  const runtime = createRuntime({
    config: {
      maxParallel: 4,
      pool: { minThreads: 2, maxThreads: 4 },
      cancelGraceMs: 0,
      retry: { delayMs: 0 },
      // Faults here are injected on purpose, far above any sane restart intensity.
      supervision: { maxRestarts: 1_000_000, periodMs: 1_000 },
      governor: { enabled: false },
      checkpoint: { dir: join(workDir, 'checkpoints') },
    },
  })
  const started = performance.now()
  let results: RunResult[]
  try {
    results = await Promise.all(plans.map((plan) => runtime.run(plan).result))
  } finally {
    await runtime.close({ force: true })
    rmSync(workDir, { recursive: true, force: true })
  }
  const wallMs = performance.now() - started
  const states: Record<string, number> = {}
  const errors: Record<string, number> = {}
  let lost = 0
  let attempts = 0
  let totalsAddUp = true
  results.forEach((result, r) => {
    const plan = plans[r]!
    const { tasks, completed, failed, skipped, cancelled } = result.totals
    if (tasks !== plan.tasks.length || completed + failed + skipped + cancelled !== tasks) totalsAddUp = false
    for (const spec of plan.tasks) {
      const task = result.tasks[spec.id]
      if (task === undefined || !['COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'].includes(task.state)) {
        lost++
        continue
      }
      const incompleteDep = (spec.dependsOn ?? []).some((d) => result.tasks[d]?.state !== 'COMPLETED')
      if ((task.state === 'SKIPPED') !== incompleteDep) lost++
      states[task.state] = (states[task.state] ?? 0) + 1
      if (task.error) errors[task.error.code] = (errors[task.error.code] ?? 0) + 1
      attempts += task.attempts
    }
  })
  return { tasks: tasksPerRun * runs, runs, wallMs: Math.round(wallMs), injected, states, errors, attempts, lost, totalsAddUp }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [tasksPerRun, runs, seed] = process.argv.slice(2).map(Number)
  const report = await soak(tasksPerRun || undefined, runs || undefined, seed || undefined)
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  process.exitCode = report.lost === 0 && report.totalsAddUp ? 0 : 1
}
