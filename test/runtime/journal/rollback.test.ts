import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Plan, TaskSpec } from '../../../src/runtime/plan/plan.ts'
import { restoreSnapshot, takeSnapshot } from '../../../src/runtime/journal/rollback.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'write-files.mjs')

let root: string
let dir: string
let runtime: Runtime

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-rollback-'))
  runtime = createRuntime({
    config: {
      maxParallel: 2,
      pool: { minThreads: 1, maxThreads: 2 },
      retry: { delayMs: 10 },
      governor: { enabled: false },
      checkpoint: { enabled: false, rollbackOnFailure: true },
    },
  })
})

afterAll(async () => {
  await runtime.close()
  rmSync(root, { recursive: true, force: true })
})

let caseIndex = 0
beforeEach(() => {
  dir = join(root, `case-${++caseIndex}`)
  mkdirSync(join(dir, 'src'), { recursive: true })
  writeFileSync(join(dir, 'src', 'api.ts'), 'original api')
  writeFileSync(join(dir, 'src', 'old.ts'), 'old file')
  writeFileSync(join(dir, 'notes.md'), 'original notes')
})

const read = (path: string) => (existsSync(join(dir, path)) ? readFileSync(join(dir, path), 'utf8') : undefined)
const writer = (id: string, input: Record<string, unknown>, extra: Partial<TaskSpec> = {}): TaskSpec => ({
  id,
  agent,
  input: { dir, ...input },
  ...extra,
})

describe('rollbackOnFailure', () => {
  it("restores a failed task's claimed files: content, deleted files, and created files", async () => {
    const plan: Plan = {
      name: 'rollback',
      tasks: [writer('bad', { write: { 'src/api.ts': 'broken', 'src/new.ts': 'new' }, remove: ['src/old.ts'], fail: true }, { claims: ['src/**'] })],
    }
    const result = await runtime.run(plan, { baseDir: dir }).result
    expect(result.tasks.bad!.state).toBe('FAILED')
    expect([read('src/api.ts'), read('src/old.ts'), read('src/new.ts')]).toEqual(['original api', 'old file', undefined])
  })

  it('keeps the changes of a task that completed', async () => {
    const plan: Plan = { name: 'keep', tasks: [writer('good', { write: { 'src/api.ts': 'improved' }, remove: ['src/old.ts'] }, { claims: ['src/**'] })] }
    const result = await runtime.run(plan, { baseDir: dir }).result
    expect(result.tasks.good!.state).toBe('COMPLETED')
    expect([read('src/api.ts'), read('src/old.ts')]).toEqual(['improved', undefined])
  })

  it('restores only what the failed task claimed', async () => {
    const plan: Plan = {
      name: 'scope',
      tasks: [writer('bad', { write: { 'src/api.ts': 'broken', 'notes.md': 'unclaimed edit' }, fail: true }, { claims: ['src/api.ts'] })],
    }
    await runtime.run(plan, { baseDir: dir }).result
    expect([read('src/api.ts'), read('notes.md')]).toEqual(['original api', 'unclaimed edit'])
  })

  it('restores to the state before the first attempt when every retry fails', async () => {
    const plan: Plan = {
      name: 'retries',
      tasks: [writer('bad', { write: { 'src/api.ts': 'attempt output', 'src/extra.ts': 'x' }, fail: true }, { claims: ['src/**'], retries: 2 })],
    }
    const result = await runtime.run(plan, { baseDir: dir }).result
    expect(result.tasks.bad).toMatchObject({ state: 'FAILED', attempts: 3 })
    expect([read('src/api.ts'), read('src/extra.ts')]).toEqual(['original api', undefined])
  })

  it('keeps the earlier completed task’s changes when a later one fails', async () => {
    const plan: Plan = {
      name: 'chain',
      tasks: [
        writer('first', { write: { 'src/api.ts': 'v2' } }, { claims: ['src/**'] }),
        writer('second', { write: { 'src/api.ts': 'v3 broken' }, fail: true }, { claims: ['src/**'], dependsOn: ['first'] }),
      ],
    }
    await runtime.run(plan, { baseDir: dir }).result
    expect(read('src/api.ts')).toBe('v2')
  })

  it('leaves files alone when rollbackOnFailure is off', async () => {
    const plain = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    try {
      const plan: Plan = { name: 'off', tasks: [writer('bad', { write: { 'src/api.ts': 'broken' }, fail: true }, { claims: ['src/**'] })] }
      await plain.run(plan, { baseDir: dir }).result
    } finally {
      await plain.close()
    }
    expect(read('src/api.ts')).toBe('broken')
  })
})

describe('takeSnapshot / restoreSnapshot', () => {
  it('treats a literal directory claim as every file under it', () => {
    const snapshot = takeSnapshot(['src'], dir)
    writeFileSync(join(dir, 'src', 'api.ts'), 'changed')
    mkdirSync(join(dir, 'src', 'deep'))
    writeFileSync(join(dir, 'src', 'deep', 'made.ts'), 'made')
    restoreSnapshot(snapshot)
    expect([read('src/api.ts'), read('src/deep/made.ts')]).toEqual(['original api', undefined])
  })

  it('deletes a claimed file that did not exist before', () => {
    const snapshot = takeSnapshot(['report.txt'], dir)
    writeFileSync(join(dir, 'report.txt'), 'created')
    restoreSnapshot(snapshot)
    expect(read('report.txt')).toBeUndefined()
  })

  it('removes a symlink that replaced a claimed file, without writing through it (regression: rollback overwrote the link target)', () => {
    const outside = join(dir, 'outside.txt')
    writeFileSync(outside, 'outside stays')
    const snapshot = takeSnapshot(['src/api.ts'], dir)
    rmSync(join(dir, 'src', 'api.ts'))
    symlinkSync(outside, join(dir, 'src', 'api.ts'))
    restoreSnapshot(snapshot)
    expect(readFileSync(outside, 'utf8')).toBe('outside stays')
    expect(lstatSync(join(dir, 'src', 'api.ts')).isFile()).toBe(true)
    expect(read('src/api.ts')).toBe('original api')
  })

  it('replaces a symlink that replaced a claimed directory, without writing through it (regression: rollback wrote outside its claims)', () => {
    const elsewhere = join(dir, 'elsewhere')
    mkdirSync(elsewhere)
    const snapshot = takeSnapshot(['src'], dir)
    renameSync(join(dir, 'src'), join(dir, 'moved'))
    symlinkSync(elsewhere, join(dir, 'src'))
    restoreSnapshot(snapshot)
    expect(existsSync(join(elsewhere, 'api.ts'))).toBe(false)
    expect(lstatSync(join(dir, 'src')).isDirectory()).toBe(true)
    expect([read('src/api.ts'), read('src/old.ts')]).toEqual(['original api', 'old file'])
  })

  it('restores a symlink that was there before as a link, not as a copy of its target', () => {
    symlinkSync('api.ts', join(dir, 'src', 'link.ts'))
    const snapshot = takeSnapshot(['src'], dir)
    rmSync(join(dir, 'src', 'link.ts'))
    writeFileSync(join(dir, 'src', 'link.ts'), 'a file now')
    restoreSnapshot(snapshot)
    expect(readlinkSync(join(dir, 'src', 'link.ts'))).toBe('api.ts')
  })

  it('refuses to restore a claimed file whose parent directory became a link elsewhere', () => {
    const elsewhere = join(dir, 'elsewhere')
    mkdirSync(elsewhere)
    const snapshot = takeSnapshot(['src/api.ts'], dir)
    renameSync(join(dir, 'src'), join(dir, 'moved'))
    symlinkSync(elsewhere, join(dir, 'src'))
    expect(() => restoreSnapshot(snapshot)).toThrow(/refused to restore .*api\.ts/)
    expect(existsSync(join(elsewhere, 'api.ts'))).toBe(false)
  })
})
