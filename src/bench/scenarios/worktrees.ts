import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRuntime, type Plan, type RunResult } from '../../index.ts'
import { scenarioRow } from '../row.ts'
import type { Scenario, ScenarioRow } from '../scenario.ts'
import { median } from '../stats.ts'

/** Writes `<id>.txt` in its worktree (or the checkout, without one) after `ms` of simulated work. */
const AGENT = `import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
export default async (input, ctx) => {
  if (input.ms > 0) await new Promise((resolve) => setTimeout(resolve, input.ms))
  writeFileSync(join(ctx.workspace ?? input.dir, ctx.taskId + '.txt'), ctx.taskId + '\\n')
  return null
}
`

/**
 * Git worktrees on a clone of this repository: what a worktree costs per task (create,
 * setup — a node_modules symlink —, commit, merge, remove) next to the same task in the
 * shared checkout, its share of a 10-task plan's makespan, and 8 parallel agents each
 * writing their own file with and without worktrees.
 */
const worktrees: Scenario = {
  name: 'worktrees',
  description: 'workspace: worktree — per-task cost (create + setup + merge + cleanup) on a clone of this repository, share of a 10-task makespan, 8 parallel agents with vs without worktrees',
  async run(options) {
    const root = repositoryRoot()
    if (root === undefined) {
      options.log('worktrees: skipped — not run from a git checkout of troupe')
      return []
    }
    const scratch = mkdtempSync(join(tmpdir(), 'troupe-bench-worktrees-'))
    try {
      const repo = join(scratch, 'repo')
      // --shared: the clone borrows this repository's objects (alternates) instead of copying them.
      execFileSync('git', ['clone', '-q', '--shared', root, repo])
      const agent = join(scratch, 'agent.mjs')
      writeFileSync(agent, AGENT)
      // The setup a JS project needs (its dependencies), as a symlink; excluded so it is not committed.
      const setup = existsSync(join(root, 'node_modules')) ? `ln -s '${join(root, 'node_modules')}' node_modules` : undefined
      if (setup !== undefined) writeFileSync(join(repo, '.git', 'info', 'exclude'), 'node_modules\n')
      const run = (label: string, tasks: number, ms: number, maxParallel: number, worktree: boolean) =>
        runPlan(scratch, repo, `${label}-${worktree ? 'wt' : 'plain'}`, planOf(agent, repo, tasks, ms, worktree, setup), maxParallel)
      const reps = options.quick ? 1 : 3

      // Per-task cost: one at a time, agents that do almost nothing.
      const perTaskWt: number[] = []
      const perTaskPlain: number[] = []
      const costTasks = options.quick ? 4 : 10
      for (let i = 0; i < reps; i++) {
        perTaskWt.push(...durations(await run(`cost${i}`, costTasks, 0, 1, true)))
        perTaskPlain.push(...durations(await run(`cost${i}`, costTasks, 0, 1, false)))
      }
      const costMs = median(perTaskWt) - median(perTaskPlain)
      options.log(`worktrees: per task ${median(perTaskWt).toFixed(0)} ms with a worktree vs ${median(perTaskPlain).toFixed(0)} ms without → cost ${costMs.toFixed(0)} ms (median)`)

      const rows: ScenarioRow[] = []
      // Agent work of 1 s even with --quick: shorter, the worktree cost alone would make the rows SEQUENTIAL.
      const workMs = 1_000
      const configs = [['10 tasks on 4 slots', 10, 4], ['8 parallel agents', 8, 8]] as const
      for (const [label, tasks, maxParallel] of options.quick ? configs.slice(1) : configs) {
        const wt: RunResult[] = []
        const plain: RunResult[] = []
        for (let i = 0; i < reps; i++) {
          wt.push(await run(`${tasks}-${i}`, tasks, workMs, maxParallel, true))
          plain.push(await run(`${tasks}-${i}`, tasks, workMs, maxParallel, false))
        }
        const wtMs = median(wt.map((r) => r.makespanMs))
        const plainMs = median(plain.map((r) => r.makespanMs))
        const share = (wtMs - plainMs) / wtMs
        options.log(`worktrees: ${label} × ${workMs} ms: makespan ${wtMs.toFixed(0)} ms with worktrees vs ${plainMs.toFixed(0)} ms without (ratio ${(wtMs / plainMs).toFixed(2)}; worktrees take ${(share * 100).toFixed(0)} % of the makespan)`)
        rows.push(
          scenarioRow({
            scenario: 'worktrees',
            label: `${label} × ${workMs} ms, each in its own worktree`,
            makespanMs: wtMs,
            sequentialMs: tasks * workMs,
            idealMs: Math.ceil(tasks / maxParallel) * workMs,
            parallelism: maxParallel,
            extra: { tasks, maxParallel, plainMakespanMs: plainMs, ratioToPlain: wtMs / plainMs, perTaskCostMs: costMs, costShareOfMakespan: share, perTaskWorktreeMs: median(perTaskWt), perTaskPlainMs: median(perTaskPlain) },
          }),
        )
      }
      return rows
    } finally {
      rmSync(scratch, { recursive: true, force: true })
    }
  },
}

export default worktrees

function planOf(agent: string, repo: string, tasks: number, ms: number, worktree: boolean, setup: string | undefined): Plan {
  return {
    name: 'bench-worktrees',
    workspace: worktree ? 'worktree' : 'none',
    ...(worktree && setup ? { setup } : {}),
    tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, agent, input: { ms, dir: repo } })),
  }
}

async function runPlan(scratch: string, repo: string, runId: string, plan: Plan, maxParallel: number): Promise<RunResult> {
  const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false, dir: join(scratch, 'troupe') }, maxParallel, pool: { minThreads: 1, maxThreads: 8 } } })
  try {
    const result = await runtime.run(plan, { runId, baseDir: repo }).result
    if (result.status !== 'completed') throw new Error(`worktrees bench run ${runId} ended ${result.status}: ${JSON.stringify(Object.values(result.tasks).find((t) => t.error)?.error)}`)
    return result
  } finally {
    await runtime.close({ force: true })
  }
}

function durations(result: RunResult): number[] {
  return Object.values(result.tasks).map((task) => task.durationMs ?? 0)
}

function repositoryRoot(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}
