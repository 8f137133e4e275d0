import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CLI_ENTRY } from '../helpers/cli.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
const TSX = import.meta.resolve('tsx')

describe('troupe run interrupted', () => {
  it('forces exit 130 on a second SIGINT instead of waiting out cancelGraceMs (regression: three Ctrl-C took 20 s)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-int-'))
    // loop.mjs never yields: only terminating its thread stops it, after the 20 s grace.
    writeFileSync(join(dir, 'plan.yaml'), `tasks:\n  - { id: stuck, agent: ${join(agents, 'loop.mjs')} }\n`)
    writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ cancelGraceMs: 20000, governor: { enabled: false } }))
    const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', 'plan.yaml', '--no-progress'], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    const waitFor = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (stderr.includes(text)) {
            child.stderr.off('data', check)
            resolve()
          }
        }
        child.stderr.on('data', check)
        check()
      })
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('close', (code) => resolve({ code, at: Date.now() })))

    await waitFor('▶ started')
    child.kill('SIGINT')
    await waitFor('cancelling running tasks')
    const secondAt = Date.now()
    child.kill('SIGINT')
    const { code, at } = await exited

    expect(code).toBe(130)
    expect(stderr).toContain('forcing exit')
    // Well under the 20 s grace the first signal would have waited out.
    expect(at - secondAt).toBeLessThan(15_000)
  })

  it('keeps the dashboard open after the run with --keep-open, until Ctrl-C, and exits with the run\'s code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-keep-'))
    writeFileSync(join(dir, 'plan.yaml'), `tasks:\n  - { id: a, agent: ${join(agents, 'echo.mjs')} }\n`)
    const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', 'plan.yaml', '--dashboard', '0', '--keep-open', '--no-progress'], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    while (!stderr.includes('stays open')) await new Promise((resolve) => setTimeout(resolve, 20))
    const url = /dashboard stays open at (\S+)/.exec(stderr)![1]!
    const snapshot = await fetch(new URL('api/snapshot', url), { headers: { authorization: `Bearer ${new URL(url).searchParams.get('token')}` } })
    expect(snapshot.status).toBe(200)
    expect(((await snapshot.json()) as { runs: { status: string }[] }).runs[0]!.status).toBe('completed')
    child.kill('SIGINT')
    expect(await exited).toBe(0)
  })
})
