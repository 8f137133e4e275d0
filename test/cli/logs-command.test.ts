import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
let cwd: string

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'troupe-logs-'))
  writeFileSync(join(cwd, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 1 } }))
  const tasks = [
    { id: 'big', agent: join(agents, 'special.mjs'), input: { kind: 'bigint' } },
    { id: 'map', agent: join(agents, 'special.mjs'), input: { kind: 'map' } },
  ]
  writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'logs', tasks }))
  expect((await runCli(['run', 'plan.json', '--run-id', 'logged', '--quiet'], { cwd })).code).toBe(0)
  const noted = [
    { id: 'n1', agent: join(agents, 'scratchpad-note.mjs'), input: { append: 'api in src/api.ts' } },
    { id: 'n2', agent: join(agents, 'scratchpad-note.mjs'), input: { append: 'evil \u001b]0;title\u0007note' }, dependsOn: ['n1'] },
  ]
  writeFileSync(join(cwd, 'noted.json'), JSON.stringify({ name: 'noted', tasks: noted }))
  expect((await runCli(['run', 'noted.json', '--run-id', 'noted', '--quiet'], { cwd })).code).toBe(0)
})

describe('troupe logs', () => {
  it('prints every stored attempt log of a run under a header', async () => {
    const { code, stdout } = await runCli(['logs', 'logged'], { cwd })
    expect(code).toBe(0)
    expect(stdout).toBe('== big · attempt 1 ==\nmaking bigint (attempt 1)\n== map · attempt 1 ==\nmaking map (attempt 1)\n')
  })

  it('prints the scratchpad notes with --scratchpad, escape sequences removed', async () => {
    const { code, stdout } = await runCli(['logs', 'noted', '--scratchpad'], { cwd })
    expect(code).toBe(0)
    expect(stdout).toMatch(/^\S+Z n1: api in src\/api\.ts\n\S+Z n2: evil note\n$/)
  })

  it('prints the messages tasks sent each other with --messages (of one task: from or to it), escape sequences removed', async () => {
    const mail = [
      { seq: 0, from: 'n1', to: 'n2', at: 0, text: 'api in src/api.ts' },
      { seq: 1, from: 'n2', to: 'n1', at: 1000, text: 'evil \u001b]0;title\u0007reply' },
    ]
    writeFileSync(join(cwd, '.troupe', 'noted', 'messages.jsonl'), mail.map((m) => `${JSON.stringify(m)}\n`).join(''))
    const all = await runCli(['logs', 'noted', '--messages'], { cwd })
    expect([all.code, all.stdout]).toEqual([0, '1970-01-01T00:00:00.000Z n1 → n2: api in src/api.ts\n1970-01-01T00:00:01.000Z n2 → n1: evil reply\n'])
    const none = await runCli(['logs', 'logged', '--messages'], { cwd })
    expect([none.code, none.stderr]).toEqual([0, 'troupe: run logged has no messages\n'])
  })

  it('exits 2 when given both --messages and --scratchpad', async () => {
    const { code, stderr } = await runCli(['logs', 'noted', '--messages', '--scratchpad'], { cwd })
    expect(code).toBe(2)
    expect(stderr).toContain('Expected one of `--scratchpad` and `--messages`, got both')
  })

  it('prints one task with --attempt', async () => {
    const { code, stdout } = await runCli(['logs', 'logged', 'map', '--attempt', '1'], { cwd })
    expect([code, stdout]).toEqual([0, '== map · attempt 1 ==\nmaking map (attempt 1)\n'])
  })

  it('exits 2 naming the tasks with logs for an unknown task', async () => {
    const { code, stderr } = await runCli(['logs', 'logged', 'nope'], { cwd })
    expect(code).toBe(2)
    expect(stderr).toContain('Tasks with logs: big, map')
  })

  it('exits 2 for run id ".."', async () => {
    const { code, stderr } = await runCli(['logs', '..'], { cwd })
    expect(code).toBe(2)
    expect(stderr).toContain('ERR_ARGUMENT_INVALID')
  })
})
