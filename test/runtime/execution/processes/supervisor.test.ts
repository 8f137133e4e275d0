import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isAlive, readProc, signalGroup, type ProcessIdentity } from '../../../../src/runtime/execution/processes/process-tree.ts'
import { exited } from '../../../helpers/journal-file.ts'
import { eventually } from './survivors.ts'

/**
 * The supervisor's protocol (supervisor.ts): troupe sends forgets (`u`, `q`) in batches, so
 * one may arrive after the id was given to a newer group; naming the start time keeps it
 * from forgetting that one.
 */

const SUPERVISOR = join(import.meta.dirname, '..', '..', '..', '..', 'src', 'runtime', 'execution', 'processes', 'supervisor.ts')
const groups: number[] = []

/** A `sleep 100` leading its own group, as troupe starts an attempt's process. */
async function group(): Promise<ProcessIdentity> {
  const child = spawn('/bin/sleep', ['100'], { detached: true, stdio: 'ignore' })
  groups.push(child.pid!)
  expect(await eventually(() => readProc(child.pid!) !== undefined)).toBe(true)
  return { pid: child.pid!, startTicks: readProc(child.pid!)!.startTicks }
}

/** A supervisor with no tag to look for (its token is empty), told `lines`, then its pipe closed. */
function supervise(lines: readonly string[]): ChildProcess {
  const args = ['--import', import.meta.resolve('tsx'), SUPERVISOR, '', '100']
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'ignore', 'ignore'] })
  child.stdin!.end(lines.map((line) => `${line}\n`).join(''))
  return child
}

afterEach(() => {
  for (const pgid of groups.splice(0)) signalGroup(pgid, 'SIGKILL')
})

describe('the supervisor', () => {
  it('stops a group whose forget names an earlier start time (a late forget of a reused id)', { timeout: 60_000 }, async () => {
    const leader = await group()
    const supervisor = supervise([`g ${leader.pid} ${leader.startTicks}`, `u ${leader.pid} ${leader.startTicks - 1}`])
    expect(await exited(supervisor)).toBe(0)
    expect(await eventually(() => !isAlive(leader))).toBe(true)
  })

  it('leaves a group it was told to forget with its start time', { timeout: 60_000 }, async () => {
    const leader = await group()
    const supervisor = supervise([`g ${leader.pid} ${leader.startTicks}`, `u ${leader.pid} ${leader.startTicks}`])
    expect(await exited(supervisor)).toBe(0)
    expect(isAlive(leader)).toBe(true)
  })
})
