import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import { ProcessGroup } from '../../../../src/runtime/execution/processes/process-group.ts'
import { readProc, signalProcess } from '../../../../src/runtime/execution/processes/process-tree.ts'

function start(file: string, args: readonly string[], input?: string): { group: ProcessGroup; stdout: () => string } {
  let out = ''
  const group = new ProcessGroup(file, args, {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? '' },
    graceMs: 200,
    onStdout: (chunk) => (out += chunk.toString('utf8')),
    onStderr: () => undefined,
    ...(input === undefined ? {} : { input }),
  })
  return { group, stdout: () => out }
}

describe('ProcessGroup', () => {
  it('writes input to stdin and closes it', async () => {
    const { group, stdout } = start('cat', [], 'hello\nworld\n')
    expect(await group.exited).toEqual({ exitCode: 0, signal: undefined, spawnError: undefined })
    expect(stdout()).toBe('hello\nworld\n')
  })

  it('gives stdin /dev/null without input, so a reader sees end of file at once', async () => {
    const { group, stdout } = start('sh', ['-c', 'wc -c'])
    expect((await group.exited).exitCode).toBe(0)
    expect(stdout().trim()).toBe('0')
  })

  it('exits cleanly when the process ends without reading a large input (EPIPE is not an error)', async () => {
    const { group } = start('true', [], 'x'.repeat(4 * 1024 * 1024))
    expect(await group.exited).toEqual({ exitCode: 0, signal: undefined, spawnError: undefined })
  })

  it('reports the signal that killed the leader, with no exit code', async () => {
    const { group } = start('sh', ['-c', 'kill -9 $$'])
    expect(await group.exited).toEqual({ exitCode: undefined, signal: 'SIGKILL', spawnError: undefined })
  })
})

/** Whether `pid` is gone, a zombie, or has a fatal signal (SIGTERM, SIGKILL) pending: signalled, if not dead yet. */
function signalledOrGone(pid: number): boolean {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return true
  }
  const field = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '0'}`)
  const fatal = (1n << 8n) | (1n << 14n)
  return /^State:\s*[ZX]/m.test(status) || ((field('SigPnd') | field('ShdPnd')) & fatal) !== 0n
}

describe('ProcessGroup at its leader\'s exit', () => {
  // Regression: the sweep at a leader's exit is batched with the other exits of the same turn;
  // a group's exited must still wait for it, also when 'close' comes in the same turn as 'exit'.
  it('has each group\'s setsid orphan signalled before exited settles, when several leaders exit together', async () => {
    const script = 'setsid sleep 100 </dev/null >/dev/null 2>&1 & echo $!'
    const groups = Array.from({ length: 4 }, () => start('/bin/sh', ['-c', script]))
    const exits = await Promise.all(groups.map(({ group }) => group.exited))
    const orphans = groups.map(({ stdout }) => Number(stdout().trim()))
    const signalled = orphans.map(signalledOrGone)
    for (const pid of orphans) if (readProc(pid)?.state !== 'Z') signalProcess(pid, 'SIGKILL')
    expect(exits.map((exit) => exit.exitCode)).toEqual([0, 0, 0, 0])
    expect(orphans.every((pid) => Number.isInteger(pid) && pid > 0)).toBe(true)
    expect(signalled).toEqual([true, true, true, true])
  })
})
