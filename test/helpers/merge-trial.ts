import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI_ENTRY } from './cli.ts'
import { gitIn, tempRepo } from './git-repo.ts'
import { exited } from './journal-file.ts'

const TSX = import.meta.resolve('tsx')
const EDIT = join(import.meta.dirname, '..', 'fixtures', 'agents', 'workspace-edit.mjs')

/**
 * kill -9 during merge and verify (issue 21 item 3): a repository, `tasks` worktree tasks
 * that each add a file, and `bad`, whose work never passes verify (verify sleeps, so a
 * kill often lands in it). `troupe run` is SIGKILLed at a random moment up to `kills`
 * times, then run to the end. Reports how many merge commits each task has on the
 * integration branch.
 */
export interface MergeTrial {
  readonly kills: number
  /** Merge commits per task id on the integration branch. */
  readonly merges: Readonly<Record<string, number>>
  /** Task states of the final invocation (from its --json result). */
  readonly states: Readonly<Record<string, string>>
  readonly exitCode: number | null
}

export async function mergeTrial(tasks: number, kills: number, maxDelayMs: number): Promise<MergeTrial> {
  const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
  writeFileSync(join(repo, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 2 }, cancelGraceMs: 200 }))
  const ids = [...Array.from({ length: tasks }, (_, i) => `t${i}`), 'bad']
  const plan = {
    name: 'merge-kill',
    maxParallel: 2,
    workspace: 'worktree',
    // Verify runs once per merge, one merge at a time: 1.5 s each keeps an uninterrupted run
    // longer than the latest kill (1 s + maxDelayMs), so the first invocation is always killed
    // (regression: at 0.4 s a quiet machine finished the run before any kill, and kills was 0).
    integration: { verify: 'sleep 1.5; test ! -e bad.txt' },
    agents: { edit: EDIT },
    tasks: ids.map((id) => ({ id, agent: 'edit', retries: 0, input: { write: { [`${id}.txt`]: `${id}\n` } } })),
  }
  writeFileSync(join(repo, 'plan.json'), JSON.stringify(plan))
  const args = ['--import', TSX, CLI_ENTRY, 'run', 'plan.json', '--run-id', 'm', '--json', '--quiet']
  let killed = 0
  for (;;) {
    const child = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'ignore'] })
    let stdout = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    const exit = exited(child)
    if (killed < kills) {
      const delay = 1_000 + Math.floor(Math.random() * maxDelayMs)
      const outcome = await Promise.race([exit, new Promise((resolve) => setTimeout(() => resolve('timer'), delay))])
      if (outcome === 'timer') {
        child.kill('SIGKILL')
        await exit
        killed++
        continue
      }
    }
    const code = await exit
    const result = JSON.parse(stdout) as { tasks: Record<string, { state: string }> }
    const states = Object.fromEntries(Object.entries(result.tasks).map(([id, task]) => [id, task.state]))
    const bodies = gitIn(repo, 'log', '--first-parent', '--merges', '--format=%B%x00', 'troupe/m/integration').split('\0')
    const merges = Object.fromEntries(ids.map((id) => [id, bodies.filter((body) => body.includes(`Troupe-Task: ${JSON.stringify(id)}`)).length]))
    return { kills: killed, merges, states, exitCode: typeof code === 'number' ? code : null }
  }
}
