import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
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

describe('troupe run killed, CLI agents', () => {
  it('the next troupe removes the troupe-mcp-* dir a SIGKILLed troupe left behind (regression: they piled up)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-int-mcp-'))
    const tmp = mkdtempSync(join(tmpdir(), 'troupe-int-tmp-'))
    const claude = join(import.meta.dirname, '..', 'fixtures', 'bin', 'claude')
    const plan = (prompt: string) =>
      `agents:\n  lead: { kind: claude-code, bin: ${claude} }\ntasks:\n  - { id: s, agent: lead, input: { prompt: ${prompt} } }\n`
    writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, checkpoint: { enabled: false } }))
    const troupe = () =>
      spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'run', 'plan.yaml', '--no-progress'], {
        cwd: dir,
        env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    writeFileSync(join(dir, 'plan.yaml'), plan('sleep'))
    const killed = troupe()
    const closed = new Promise((resolve) => killed.on('close', resolve))
    let left: string[] = []
    const mcpDirs = () => readdirSync(tmp).filter((name) => name.startsWith('troupe-mcp-'))
    while ((left = mcpDirs()).length === 0) await new Promise((resolve) => setTimeout(resolve, 50))
    killed.kill('SIGKILL')
    await closed
    // The stand-in it started lives on in its own process group: stop it (found by its --mcp-config path).
    for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join(tmp, left[0]!))) process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone
      }
    }
    expect(readdirSync(tmp).filter((name) => name.startsWith('troupe-mcp-'))).toEqual(left)
    writeFileSync(join(dir, 'plan.yaml'), plan('success'))
    const next = troupe()
    expect(await new Promise((resolve) => next.on('close', resolve))).toBe(0)
    expect(readdirSync(tmp).filter((name) => name.startsWith('troupe-mcp-'))).toEqual([])
  }, 60_000)
})
