import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LogStore } from '../../../src/runtime/journal/log-store.ts'
import { attemptLogFile } from '../../../src/runtime/journal/paths.ts'

let root: string
let n = 0
const fresh = () => join(root, `run-${++n}`)

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-logstore-'))
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('LogStore', () => {
  it('writes each attempt of each task to its own file, lines in order', async () => {
    const dir = fresh()
    const store = new LogStore(dir)
    store.write('a', 1, 'one')
    store.write('a', 2, 'two')
    store.write('a', 1, 'three')
    await store.close()
    expect(readFileSync(attemptLogFile(dir, 'a', 1), 'utf8')).toBe('one\nthree\n')
    expect(readFileSync(attemptLogFile(dir, 'a', 2), 'utf8')).toBe('two\n')
  })

  it('keeps what another writer appended to the same file (a process agent’s stdout)', async () => {
    const dir = fresh()
    const store = new LogStore(dir)
    store.write('p', 1, 'from ctx.log')
    await store.flush()
    appendFileSync(attemptLogFile(dir, 'p', 1), 'from stdout\n')
    store.write('p', 1, 'again')
    await store.close()
    expect(readFileSync(attemptLogFile(dir, 'p', 1), 'utf8')).toBe('from ctx.log\nfrom stdout\nagain\n')
  })

  it('stops at maxBytesPerAttempt with one truncation line', async () => {
    const dir = fresh()
    const store = new LogStore(dir, { maxBytesPerAttempt: 10 })
    for (let i = 0; i < 5; i++) store.write('t', 1, 'abcd')
    await store.close()
    expect(readFileSync(attemptLogFile(dir, 't', 1), 'utf8')).toBe('abcd\nabcd\n[troupe: log truncated at 10 bytes]\n')
  })

  it('names the invocation it is given in the separator before a resumed attempt’s lines', async () => {
    const dir = fresh()
    const first = new LogStore(dir)
    first.write('r', 1, 'before')
    await first.close()
    const resumed = new LogStore(dir, { invocation: 3 })
    resumed.startAttempt('r', 1)
    resumed.write('r', 1, 'after')
    await resumed.close()
    expect(readFileSync(attemptLogFile(dir, 'r', 1), 'utf8')).toMatch(/^before\n── troupe: r · attempt 1 · invocation 3 · \S+Z ──\nafter\n$/)
  })

  it('drops lines written after close', async () => {
    const dir = fresh()
    const store = new LogStore(dir)
    store.write('c', 1, 'kept')
    await store.close()
    store.write('c', 1, 'dropped')
    await store.flush()
    expect(readFileSync(attemptLogFile(dir, 'c', 1), 'utf8')).toBe('kept\n')
  })
})
