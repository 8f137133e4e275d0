import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunResult } from '../../../src/runtime/report/result.ts'
import { CLI_ENTRY, runCli } from '../../helpers/cli.ts'
import { completedIn, exited, journalLines, until } from '../../helpers/journal-file.ts'

const TSX = import.meta.resolve('tsx')
const agents = join(import.meta.dirname, '..', '..', 'fixtures', 'agents')

let cwd: string

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'troupe-spawn-kill-'))
  writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false } }))
})

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true })
})

/** A parent that spawns 12 children and waits for them; each child marks each time it runs. */
function writePlan(): string {
  const marks = join(cwd, 'spawned.marks')
  const children = Array.from({ length: 12 }, (_, i) => ({ id: `child-${i}`, agent: 'marker', input: { file: marks, ms: 250 } }))
  const file = join(cwd, 'spawned.json')
  writeFileSync(
    file,
    JSON.stringify({
      name: 'spawned',
      maxParallel: 2,
      agents: { spawn: join(agents, 'spawn.mjs'), marker: join(agents, 'marker.mjs') },
      tasks: [{ id: 'lead', agent: 'spawn', input: { wait: true, throwOnRefusal: true, children } }],
    }),
  )
  return file
}

function start(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' })
}

describe('spawned tasks survive kill -9', () => {
  it('resume re-creates the spawned tasks and re-runs none that completed', async () => {
    const plan = writePlan()
    const child = start(['run', plan, '--run-id', 'spawned', '--quiet'])
    const exit = exited(child)
    await until(() => completedIn(cwd, 'spawned').length >= 3, 'three completed children in the journal')
    child.kill('SIGKILL')
    expect(await exit).toBe('SIGKILL')
    const before = completedIn(cwd, 'spawned')
    expect(before.length).toBeLessThan(12)
    expect(journalLines(cwd, 'spawned').filter((r) => r.type === 'spawn')).toHaveLength(1)

    const again = await runCli(['run', plan, '--run-id', 'spawned', '--json', '--quiet'], { cwd })
    expect(again.code).toBe(0)
    const result = JSON.parse(again.stdout) as RunResult
    expect(result.totals).toMatchObject({ tasks: 13, completed: 13, reused: before.length })
    const marks = readFileSync(join(cwd, 'spawned.marks'), 'utf8').split('\n').filter(Boolean)
    for (const id of before) expect(marks.filter((m) => m === id), `runs of ${id}`).toHaveLength(1)
    expect(Object.keys((result.tasks.lead!.output as { outputs: object }).outputs)).toHaveLength(12)
    // The parent spawned the same children again: nothing new was journaled.
    expect(journalLines(cwd, 'spawned').filter((r) => r.type === 'spawn')).toHaveLength(1)
  })

  it('troupe runs counts the spawned tasks (regression: it showed 13/1)', async () => {
    const runs = await runCli(['runs'], { cwd })
    expect(runs.stdout).toMatch(/spawned\s+completed\s+.*13\/13\s+2\s/)
  })
})
