import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isAlive, readProc } from '../../../src/runtime/execution/processes/process-tree.ts'
import { seal, unseal } from '../../../src/runtime/journal/integrity.ts'
import { PROCESSES_FILE, readLedger, recordProcess, stopLeftovers } from '../../../src/runtime/journal/process-ledger.ts'

let dir: string
const children: number[] = []

afterEach(() => {
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true })
})

function sleeper(env: NodeJS.ProcessEnv = {}): { pid: number; startTicks: number } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore', env: { PATH: process.env.PATH, ...env } })
  children.push(child.pid!)
  return { pid: child.pid!, startTicks: readProc(child.pid!)!.startTicks }
}

describe('the process ledger', () => {
  it('kills a recorded process that still runs, and empties the ledger', async () => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-ledger-'))
    const proc = sleeper()
    recordProcess({ runDir: dir, taskId: 't', attempt: 1 }, { ...proc, group: false })
    expect(readLedger(join(dir, PROCESSES_FILE))).toEqual([{ task: 't', attempt: 1, pid: proc.pid, start: proc.startTicks, group: false }])
    expect(await stopLeftovers(dir)).toBe(1)
    expect(isAlive(proc)).toBe(false)
    expect(existsSync(join(dir, PROCESSES_FILE))).toBe(false)
  })

  it('leaves alone a process whose pid was reused (another start time)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-ledger-'))
    const proc = sleeper()
    recordProcess({ runDir: dir, taskId: 't', attempt: 1 }, { pid: proc.pid, startTicks: proc.startTicks - 1, group: false })
    expect(await stopLeftovers(dir)).toBe(0)
    expect(isAlive(proc)).toBe(true)
  })

  it('kills an unrecorded process whose environment names the run directory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-ledger-'))
    const proc = sleeper({ TROUPE_RUN_DIR: dir })
    const other = sleeper({ TROUPE_RUN_DIR: `${dir}-other` })
    expect(await stopLeftovers(dir)).toBe(1)
    expect(isAlive(proc)).toBe(false)
    expect(isAlive(other)).toBe(true)
  })

  it('spares what a live troupe process (a worker on this machine) still runs, and kills what a dead one left', async () => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-ledger-'))
    // A stand-in for a live troupe worker, and the tag values its processes and a dead one's carry.
    const worker = sleeper()
    const live = sleeper({ TROUPE_RUN_DIR: dir, TROUPE_PROCESS_TAG: `${worker.pid}-${worker.startTicks}-ab12.1` })
    const orphan = sleeper({ TROUPE_RUN_DIR: dir, TROUPE_PROCESS_TAG: `${worker.pid}-${worker.startTicks - 1}-ab12.2` })
    const recorded = sleeper()
    recordProcess({ runDir: dir, taskId: 't', attempt: 1 }, { ...recorded, group: false }, worker)
    expect(await stopLeftovers(dir)).toBe(1)
    expect(isAlive(live)).toBe(true)
    expect(isAlive(recorded)).toBe(true)
    expect(isAlive(orphan)).toBe(false)
  })

  it('skips a ledger line whose seal is broken instead of killing what it names', async () => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-ledger-'))
    const proc = sleeper()
    recordProcess({ runDir: dir, taskId: 't', attempt: 1 }, { ...proc, group: false })
    const file = join(dir, PROCESSES_FILE)
    writeFileSync(file, readFileSync(file, 'utf8').replace('"attempt":1', '"attempt":2'))
    expect(readLedger(file)).toEqual([])
    expect(isAlive(proc)).toBe(true)
  })
})

describe('the seal of a journal line', () => {
  it('round-trips and names what is wrong', () => {
    const line = seal(7, '{"type":"task","id":"é"}')
    expect(line).toMatch(/^\{"seq":7,"type":"task","id":"é","crc":"[0-9a-f]{8}"\}$/)
    expect(unseal(line)).toEqual({ seq: 7 })
    expect(unseal(line.replace('é', 'e'))).toEqual({ problem: 'its checksum does not match its content (the line was changed)' })
    expect(unseal('{"seq":7,"type":"task"}')).toEqual({ problem: 'it has no checksum' })
  })
})
