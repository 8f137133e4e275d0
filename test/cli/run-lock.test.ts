import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { parse } from '../../src/runtime/journal/codec.ts'
import { CLI_ENTRY, runCli } from '../helpers/cli.ts'

const TSX = import.meta.resolve('tsx')
const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
let cwd: string

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'troupe-run-lock-'))
  writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 1 } }))
  writeFileSync(join(cwd, 'slow.json'), JSON.stringify({ name: 'slow', tasks: [{ id: 'w', agent: join(agents, 'sleep.mjs'), input: { ms: 60_000 } }] }))
  const special = (id: string, kind: string) => ({ id, agent: join(agents, 'special.mjs'), input: { kind } })
  writeFileSync(join(cwd, 'special.json'), JSON.stringify({ name: 'special', tasks: [special('big', 'bigint'), special('map', 'map'), special('cyc', 'cyclic')] }))
})

describe('troupe run and the run-id lock', () => {
  it('exits 2 with ERR_RUN_LOCKED naming the holder while the same run id runs (regression: both ran every task)', async () => {
    const first = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', 'slow.json', '--run-id', 'held', '--quiet'], { cwd, stdio: 'ignore' })
    try {
      const lock = join(cwd, '.troupe', 'held', 'lock')
      while (!existsSync(lock)) await new Promise((resolve) => setTimeout(resolve, 25))
      const second = await runCli(['run', 'slow.json', '--run-id', 'held', '--quiet'], { cwd })
      expect(second.code).toBe(2)
      expect(second.stderr).toContain(`held by pid ${first.pid} on host ${hostname()}`)
      expect(second.stderr).toContain('ERR_RUN_LOCKED')
    } finally {
      first.kill('SIGTERM')
      await new Promise((resolve) => first.once('exit', resolve))
    }
    expect(existsSync(join(cwd, '.troupe', 'held', 'lock'))).toBe(false)
  })

  it('exits 2 for --run-id .. and writes nothing into the working directory (regression)', async () => {
    const { code } = await runCli(['run', 'special.json', '--run-id', '..', '--quiet'], { cwd })
    expect(code).toBe(2)
    expect(existsSync(join(cwd, 'result.json'))).toBe(false)
  })
})

describe('troupe run --json (regression: printed nothing for a 10n output)', () => {
  it('prints one parseable document with 10n, a Map and a cycle tagged, and writes result.json', async () => {
    const { code, stdout } = await runCli(['run', 'special.json', '--run-id', 'special', '--json', '--quiet'], { cwd })
    expect(code).toBe(0)
    const printed = JSON.parse(stdout) as { tasks: Record<string, { output: unknown }> }
    expect(printed.tasks.big!.output).toEqual({ $t: 'bigint', v: '10' })
    const decoded = parse(stdout) as { tasks: Record<string, { output: unknown }> }
    expect(decoded.tasks.map!.output).toStrictEqual(new Map<string, unknown>([['k', 1], ['n', 2n]]))
    expect(parse(readFileSync(join(cwd, '.troupe', 'special', 'result.json'), 'utf8'))).toMatchObject({ runId: 'special' })
  })
})
