import { describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const cwd = () => mkdtempSync(join(tmpdir(), 'troupe-exec-'))

describe('troupe exec', { timeout: 60_000 }, () => {
  it('runs every command and prefixes each output line with its number', async () => {
    const { code, stdout } = await runCli(['exec', 'echo one && echo one-b', 'echo two >&2'], { cwd: cwd() })
    expect(code).toBe(0)
    expect(stdout.split('\n').filter(Boolean).sort()).toEqual(['[1] one', '[1] one-b', '[2] two'])
  })

  it('runs the commands at once: two commands that each wait for the other to have started', async () => {
    const dir = cwd()
    // Each command creates its marker, then waits (up to 10 s) for the other's: only a parallel run finishes.
    const wait = (mine: string, other: string) =>
      `touch ${mine}; for i in $(seq 100); do [ -e ${other} ] && echo met && exit 0; sleep 0.1; done; exit 9`
    const { code, stdout } = await runCli(['exec', wait('a', 'b'), wait('b', 'a')], { cwd: dir })
    expect([code, stdout.match(/met/g)?.length]).toEqual([0, 2])
  })

  it('with --max-parallel 1 runs one command at a time', async () => {
    const dir = cwd()
    const both = (mine: string, other: string) =>
      `touch ${mine}; [ -e ${other}.running ] && exit 7; touch ${mine}.running; sleep 0.3; rm ${mine}.running`
    const { code } = await runCli(['exec', '--max-parallel', '1', both('a', 'b'), both('b', 'a')], { cwd: dir })
    expect(code).toBe(0)
  })

  it('exits with the exit code of the first command that failed and says which', async () => {
    // [1] fails only after [2] has: it waits for [2]'s marker, then half a second more.
    const first = 'for i in $(seq 200); do [ -e failed ] && sleep 0.5 && exit 4; sleep 0.05; done; exit 5'
    const { code, stderr } = await runCli(['exec', first, 'touch failed; exit 3', 'true'], { cwd: cwd() })
    expect(code).toBe(3)
    expect(stderr).toContain('troupe: [2] touch failed; exit 3 exited with code 3 — the first failure (2 of 3 commands failed)')
  })

  it('exits 128 + the signal number for a command killed by a signal', async () => {
    const { code, stderr } = await runCli(['exec', 'kill -TERM $$'], { cwd: cwd() })
    expect(code).toBe(143)
    expect(stderr).toContain('was killed by SIGTERM')
  })

  it('runs the command text as typed: {{…}} is not a template', async () => {
    const { code, stdout } = await runCli(['exec', "echo '{{input.command}}'"], { cwd: cwd() })
    expect([code, stdout]).toEqual([0, '[1] {{input.command}}\n'])
  })

  it('writes no journal', async () => {
    const dir = cwd()
    expect((await runCli(['exec', 'true'], { cwd: dir })).code).toBe(0)
    expect(readdirSync(dir)).toEqual([])
  })

  it('needs at least one command (exit 2)', async () => {
    const { code, stderr } = await runCli(['exec'], { cwd: cwd() })
    expect(code).toBe(2)
    expect(stderr).toContain("missing required argument 'commands'")
  })
})
