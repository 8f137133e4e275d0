import { describe, expect, it } from 'vitest'
import { indexProcTable, withDescendants, type ProcEntry } from '../../../../src/runtime/execution/processes/process-tree.ts'

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
