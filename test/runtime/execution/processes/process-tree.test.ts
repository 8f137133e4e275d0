import { spawn, type ChildProcess } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import {
  indexProcTable,
  readNewerProcTable,
  readPidClock,
  readProc,
  readProcTable,
  tagValues,
  withDescendants,
  type ProcEntry,
} from '../../../../src/runtime/execution/processes/process-tree.ts'
import { eventually } from './survivors.ts'

const proc = (pid: number, ppid: number, pgrp: number): ProcEntry => ({ pid, ppid, pgrp, state: 'S', startTicks: pid, cpuMs: 0, rssBytes: 0 })

describe('indexProcTable', () => {
  const procs = indexProcTable([proc(10, 1, 10), proc(11, 10, 10), proc(12, 11, 12), proc(13, 12, 12), proc(20, 1, 20)])

  it('finds the descendants of roots across groups, once each', () => {
    expect([...withDescendants([10, 11], procs)].sort()).toEqual([10, 11, 12, 13])
  })

  it('lists the members of each group', () => {
    expect(procs.groups.get(12)?.map((entry) => entry.pid)).toEqual([12, 13])
    expect(procs.groups.get(99)).toBeUndefined()
  })
})

/** Kills what a test started. */
const cleanups: (() => void)[] = []

/** A `sleep 30` with exactly `env` (in that order), killed after the test. */
function sleeper(env: Record<string, string>): ChildProcess {
  const child = spawn('/bin/sleep', ['30'], { env, stdio: 'ignore', detached: true })
  cleanups.push(() => child.kill('SIGKILL'))
  return child
}

afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

describe('tagValues', () => {
  it('finds a tag whether its variable comes first in the environment or later', async () => {
    const first = sleeper({ TROUPE_PROCESS_TAG: 'test-first.1', A: '1' })
    const later = sleeper({ A: '1', TROUPE_PROCESS_TAG: 'test-later.2', B: '2' })
    expect(await eventually(() => readProc(first.pid!) !== undefined && readProc(later.pid!) !== undefined)).toBe(true)
    const tags = tagValues('TROUPE_PROCESS_TAG', readProcTable())
    expect(tags.get('test-first.1')?.map((entry) => entry.pid)).toEqual([first.pid])
    expect(tags.get('test-later.2')?.map((entry) => entry.pid)).toEqual([later.pid])
  })

  it('reads no environment of a process started before sinceTicks', async () => {
    const child = sleeper({ TROUPE_PROCESS_TAG: 'test-old.1' })
    expect(await eventually(() => readProc(child.pid!) !== undefined)).toBe(true)
    const entry = readProc(child.pid!)!
    expect(tagValues('TROUPE_PROCESS_TAG', [entry], entry.startTicks + 1).has('test-old.1')).toBe(false)
    expect(tagValues('TROUPE_PROCESS_TAG', [entry], entry.startTicks).has('test-old.1')).toBe(true)
  })
})

describe('readNewerProcTable', () => {
  it('has the processes started after a leader: the leader and what it started', async () => {
    const clock = readPidClock()
    const leader = spawn('/bin/sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore', detached: true })
    cleanups.push(() => process.kill(-leader.pid!, 'SIGKILL'))
    expect(clock).toBeDefined()
    expect(await eventually(() => (indexProcTable().groups.get(leader.pid!)?.length ?? 0) === 3)).toBe(true)
    const table = readNewerProcTable([{ pid: leader.pid!, clock }])!
    expect(table.filter((entry) => entry.pgrp === leader.pid).length).toBe(3)
  })

  it('leaves out the pids it is told to skip', async () => {
    const clock = readPidClock()
    const leader = sleeper({ A: '1' })
    const other = sleeper({ A: '2' })
    expect(await eventually(() => readProc(other.pid!) !== undefined)).toBe(true)
    const pids = readNewerProcTable([{ pid: leader.pid!, clock }], new Set([other.pid!]))!.map((entry) => entry.pid)
    expect(pids).toContain(leader.pid)
    expect(pids).not.toContain(other.pid)
  })

  it('gives no table when more processes were started since the clock than half the pid space (pids may have wrapped)', () => {
    expect(readNewerProcTable([{ pid: process.pid, clock: { lastPid: process.pid, forks: -1e12 } }])).toBeUndefined()
  })

  it('gives no table when the leader\'s pid is not one given out after its clock (a /proc that counts pids otherwise)', () => {
    const clock = readPidClock()!
    expect(readNewerProcTable([{ pid: clock.lastPid, clock }])).toBeUndefined()
  })

  it('gives no table for a leader started without a clock', () => {
    expect(readNewerProcTable([{ pid: process.pid, clock: undefined }])).toBeUndefined()
  })
})
