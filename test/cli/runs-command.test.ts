import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { RunInfo } from '../../src/runtime/journal/history.ts'
import { runCli } from '../helpers/cli.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
let cwd: string

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'troupe-runs-'))
  writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 1 } }))
  writeFileSync(join(cwd, 'ok.json'), JSON.stringify({ name: 'ok', tasks: [{ id: 'a', agent: join(agents, 'sleep.mjs'), input: { ms: 1 } }] }))
  writeFileSync(
    join(cwd, 'bad.json'),
    JSON.stringify({ name: 'bad', tasks: [{ id: 'a', agent: join(agents, 'sleep.mjs'), input: { ms: 1 } }, { id: 't', agent: join(agents, 'throw.mjs') }] }),
  )
  expect((await runCli(['run', 'ok.json', '--run-id', 'first', '--quiet'], { cwd })).code).toBe(0)
  expect((await runCli(['run', 'bad.json', '--run-id', 'second', '--quiet'], { cwd })).code).toBe(1)
})

describe('troupe runs', () => {
  it('lists the runs newest first with status and tasks done/total (--json)', async () => {
    const { code, stdout } = await runCli(['runs', '--json'], { cwd })
    expect(code).toBe(0)
    const runs = JSON.parse(stdout) as RunInfo[]
    expect(runs.map((r) => [r.runId, r.status, r.done, r.total, r.name])).toEqual([
      ['second', 'failed', 1, 2, 'bad'],
      ['first', 'completed', 1, 1, 'ok'],
    ])
  })

  it('prints a table with one line per run', async () => {
    const { code, stdout } = await runCli(['runs'], { cwd })
    expect(code).toBe(0)
    const lines = stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^RUN ID\s+STATUS\s+STARTED \(UTC\)\s+DONE/)
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual(['second', 'first'])
  })
})
