import { tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import { ProcessGroup } from '../../../../src/runtime/execution/processes/process-group.ts'

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
