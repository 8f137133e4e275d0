import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { lockFile, RunLock } from '../../../src/runtime/journal/lock.ts'

const TSX = import.meta.resolve('tsx')
const LOCK_MODULE = join(import.meta.dirname, '..', '..', '..', 'src', 'runtime', 'journal', 'lock.ts')

let root: string
let dir: string
let index = 0

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-lock-'))
})
afterAll(() => rmSync(root, { recursive: true, force: true }))
beforeEach(() => {
  dir = join(root, `run-${++index}`)
  mkdirSync(dir, { recursive: true })
})

/** A pid that was alive a moment ago and is not any more. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(child.stdout)
}

const writeHolder = (pid: number, host = hostname()) =>
  writeFileSync(lockFile(dir), `${JSON.stringify({ pid, host, startedAt: 0, token: `t-${pid}` })}\n`)

describe('RunLock', () => {
  it('refuses a run id held by a live process with ERR_RUN_LOCKED naming its pid and host', async () => {
    const holder = spawn('sleep', ['30'])
    try {
      writeHolder(holder.pid!)
      expect(() => RunLock.acquire(dir, 'busy')).toThrow(
        expect.objectContaining({ code: 'ERR_RUN_LOCKED', message: expect.stringContaining(`pid ${holder.pid} on host ${hostname()}`) }),
      )
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('takes over a lock left by a killed process', () => {
    writeHolder(deadPid())
    const lock = RunLock.acquire(dir, 'stale')
    expect(JSON.parse(readFileSync(lockFile(dir), 'utf8'))).toMatchObject({ pid: process.pid, token: lock.holder.token })
    lock.release()
  })

  it('removes the lock file on release, and a second release is a no-op', () => {
    const lock = RunLock.acquire(dir, 'release')
    lock.release()
    expect(existsSync(lockFile(dir))).toBe(false)
    const other = RunLock.acquire(dir, 'release')
    lock.release()
    expect(existsSync(lockFile(dir))).toBe(true)
    other.release()
  })

  it('lets exactly one of eight processes take over a stale lock at once (regression: both runs ran every task)', async () => {
    writeHolder(deadPid())
    const script = `
      import { RunLock } from ${JSON.stringify(LOCK_MODULE)}
      let line
      try { RunLock.acquire(${JSON.stringify(dir)}, 'race'); line = 'acquired' } catch (e) { line = e.code }
      process.stdout.write(line + '\\n')
      process.stdin.resume()
      process.stdin.on('end', () => process.exit(0))
    `
    const children = Array.from({ length: 8 }, () => spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }))
    const answers = await Promise.all(
      children.map((child) => new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())))),
    )
    for (const child of children) child.stdin.end()
    await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve))))
    expect(answers.filter((a) => a === 'acquired')).toHaveLength(1)
    expect(answers.filter((a) => a === 'ERR_RUN_LOCKED')).toHaveLength(7)
    expect(existsSync(lockFile(dir))).toBe(false)
  })
})
