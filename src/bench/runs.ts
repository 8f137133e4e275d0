import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRuntime, type Plan, type RunOptions, type RunResult, type Runtime, type TroupeConfig } from '../index.ts'

/**
 * Runs `fn` on a fresh runtime and always closes it, so a failed scenario leaves no threads
 * behind. The governor is off unless the config turns it on: the bench measures the
 * scheduler's parallelism, and on a shared machine the governor would (rightly) hold work
 * back because of other processes' load. Journals stay on, as by default, so their cost is
 * measured, but go to a temporary directory removed afterwards, not into the user's `.troupe`.
 */
export async function withRuntime<T>(config: TroupeConfig, fn: (runtime: Runtime) => Promise<T>): Promise<T> {
  const journals = mkdtempSync(join(tmpdir(), 'troupe-bench-'))
  const runtime = createRuntime({
    config: { ...config, governor: { enabled: false, ...config.governor }, checkpoint: { dir: journals, ...config.checkpoint } },
  })
  try {
    return await fn(runtime)
  } finally {
    await runtime.close({ force: true })
    rmSync(journals, { recursive: true, force: true })
  }
}

/** Runs a plan to its end; a run that does not complete is an error, never a sample. */
export async function runToEnd(runtime: Runtime, plan: Plan, options: RunOptions = {}): Promise<RunResult> {
  const result = await runtime.run(plan, options).result
  if (result.status !== 'completed') {
    const failed = Object.entries(result.tasks).find(([, task]) => task.error !== undefined)
    const why = failed ? `task "${failed[0]}": ${failed[1].error!.code} ${failed[1].error!.message}` : result.status
    throw new Error(`bench run of plan "${plan.name ?? 'unnamed'}" ended ${result.status}: ${why}`)
  }
  return result
}

/** A plan of `count` independent tasks of one agent. */
export function independentPlan(name: string, count: number, agentFile: string, input: (index: number) => unknown): Plan {
  return {
    name,
    agents: { agent: agentFile },
    tasks: Array.from({ length: count }, (_, i) => ({ id: `t${i}`, agent: 'agent', input: input(i) })),
  }
}
