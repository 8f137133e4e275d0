import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
let cwd: string

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'troupe-report-cmd-'))
  writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 1 } }))
  writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'special', tasks: [{ id: 'big', agent: join(agents, 'special.mjs'), input: { kind: 'bigint' } }] }))
  expect((await runCli(['run', 'plan.json', '--run-id', 'older', '--quiet'], { cwd })).code).toBe(0)
  expect((await runCli(['run', 'plan.json', '--run-id', 'newer', '--quiet'], { cwd })).code).toBe(0)
})

describe('troupe report', () => {
  it("writes the newest finished run's report into its directory with --last", async () => {
    const { code, stderr } = await runCli(['report', '--last'], { cwd })
    expect(code).toBe(0)
    expect(stderr).toContain(join('.troupe', 'newer', 'report.html'))
    expect(existsSync(join(cwd, '.troupe', 'newer', 'report.html'))).toBe(true)
  })

  it('reports a run whose output is 10n (regression: report found no run)', async () => {
    const { code } = await runCli(['report', 'older'], { cwd })
    expect(code).toBe(0)
    expect(existsSync(join(cwd, '.troupe', 'older', 'report.html'))).toBe(true)
  })

  it('writes where -o says', async () => {
    const { code } = await runCli(['report', 'older', '-o', 'here.html'], { cwd })
    expect(code).toBe(0)
    expect(existsSync(join(cwd, 'here.html'))).toBe(true)
  })
})
