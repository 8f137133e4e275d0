import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CacheStore } from '../../../src/runtime/cache/cache-store.ts'

const KEY = 'k'.repeat(43)
const dirOf = () => join(mkdtempSync(join(tmpdir(), 'troupe-cache-store-')), 'cache')

describe('CacheStore', () => {
  it('reads back what it stored, Maps and undefined included', async () => {
    const store = new CacheStore(dirOf(), 1_000_000)
    const output = { files: new Map([['a', 1]]), missing: undefined }
    expect(await store.write(KEY, { taskId: 't', output, storedAt: 5 })).toBe(true)
    expect(await new CacheStore(store.dir, 1_000_000).read(KEY)).toEqual({ taskId: 't', output, storedAt: 5 })
  })

  it('does not store an entry larger than maxBytes', async () => {
    const store = new CacheStore(dirOf(), 200)
    expect(await store.write(KEY, { taskId: 't', output: 'x'.repeat(500), storedAt: 0 })).toBe(false)
    expect(await store.read(KEY)).toBeUndefined()
  })

  it('removes the temp file a writer killed mid-write left (kill -9), at the next store', async () => {
    const dir = dirOf()
    mkdirSync(dir, { recursive: true })
    const dead = spawnSync('true').pid
    const leftover = join(dir, `.${KEY}.${dead}.abcd1234.tmp`)
    const live = join(dir, `.${KEY}.${process.pid}.abcd1234.tmp`)
    writeFileSync(leftover, 'half')
    writeFileSync(live, 'in progress')
    await new CacheStore(dir, 1_000_000).write('m'.repeat(43), { taskId: 't', output: 1, storedAt: 0 })
    expect(existsSync(leftover)).toBe(false)
    expect(existsSync(live)).toBe(true)
    expect(readdirSync(dir).filter((name) => name.endsWith('.entry'))).toHaveLength(1)
  })

  it('refuses keys that are not plain names (no path can be formed from one)', async () => {
    const store = new CacheStore(dirOf(), 1_000_000)
    expect(await store.write('../../etc/passwd-xxxxxxxxxx', { taskId: 't', output: 1, storedAt: 0 })).toBe(false)
    expect(await store.read('../../etc/passwd-xxxxxxxxxx')).toBeUndefined()
  })
})
