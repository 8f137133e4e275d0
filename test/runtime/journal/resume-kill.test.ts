import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI_ENTRY, runCli } from '../../helpers/cli.ts'
import { completedIn as completedInFile, exited, journalLines as journalFileLines, until } from '../../helpers/journal-file.ts'
import type { RunResult } from '../../../src/runtime/report/result.ts'

const TSX = import.meta.resolve('tsx')
const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'marker.mjs')

let cwd: string

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'troupe-kill-'))
  writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 } }))
})

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true })
})

/** Two chains of four tasks, each appending its id to a marker file, then taking `ms`. */
function writePlan(name: string, ms: number): string {
  const marks = join(cwd, `${name}.marks`)
  const tasks = ['a', 'b'].flatMap((chain) =>
    [1, 2, 3, 4].map((n) => ({ id: `${chain}${n}`, agent, input: { file: marks, ms }, ...(n > 1 ? { dependsOn: [`${chain}${n - 1}`] } : {}) })),
  )
  const file = join(cwd, `${name}.json`)
  writeFileSync(file, JSON.stringify({ name, maxParallel: 2, tasks }))
  return file
}

function start(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' })
}

const journalLines = (runId: string) => journalFileLines(cwd, runId)
const completedIn = (runId: string) => completedInFile(cwd, runId)

describe('kill -9 mid-run, then the same command again', () => {
  it('finishes the run without re-running any task that had completed', async () => {
    const plan = writePlan('killed', 300)
    const child = start(['run', plan, '--run-id', 'killed', '--quiet'])
    const exit = exited(child)
    await until(() => completedIn('killed').length >= 3, 'three completed tasks in the journal')
    child.kill('SIGKILL')
    expect(await exit).toBe('SIGKILL')
    const before = completedIn('killed')
    expect(before.length).toBeLessThan(8)

    const again = await runCli(['run', plan, '--run-id', 'killed', '--json', '--quiet'], { cwd })
    expect(again.code).toBe(0)
    const result = JSON.parse(again.stdout) as RunResult
    expect(result.totals).toMatchObject({ tasks: 8, completed: 8 })
    expect(result.totals.reused).toBe(before.length)
    const marks = readFileSync(join(cwd, 'killed.marks'), 'utf8').split('\n').filter(Boolean)
    for (const id of before) expect(marks.filter((m) => m === id), `runs of ${id}`).toHaveLength(1)
    for (const id of Object.keys(result.tasks)) expect(marks).toContain(id)
  })
})

describe('SIGINT / SIGTERM', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} cancels the run, flushes the journal and exits 130`, async () => {
      const runId = `interrupted-${signal}`
      const plan = writePlan(runId, 2_000)
      const child = start(['run', plan, '--run-id', runId, '--quiet'])
      const exit = exited(child)
      await until(() => existsSync(join(cwd, `${runId}.marks`)), 'a task to start')
      child.kill(signal)
      expect(await exit).toBe(130)
      const lines = journalLines(runId)
      expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'cancelled' })
      expect(lines.filter((r) => r.type === 'task' && r.state === 'CANCELLED')).toHaveLength(8)
      expect(existsSync(join(cwd, '.troupe', runId, 'result.json'))).toBe(true)
    })
  }
})
