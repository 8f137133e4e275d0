import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { JsonlLog, parseJsonl, readJsonl } from '../../../src/runtime/coordination/jsonl-log.ts'

const root = mkdtempSync(join(tmpdir(), 'troupe-jsonl-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const number = (value: unknown) => ((value as { n?: unknown }).n === undefined ? undefined : (value as { n: number }).n)

describe('parseJsonl', () => {
  it('drops blank lines, foreign values, null and a torn last line', () => {
    expect(parseJsonl('{"n":1}\n\n{"x":2}\nnull\n{"n":3}\n{"n":', number)).toEqual([1, 3])
  })
})

describe('JsonlLog', () => {
  it('appends records one line each, in the order appended', async () => {
    const file = join(root, 'order', 'log.jsonl')
    expect(await readJsonl(file, number)).toEqual([])
    const log = new JsonlLog(file)
    await Promise.all([log.append({ n: 1 }), log.append({ n: 2 }), log.append({ n: 3 })])
    expect(readFileSync(file, 'utf8')).toBe('{"n":1}\n{"n":2}\n{"n":3}\n')
  })

  it('reads back what a killed process left, its torn last line dropped', async () => {
    const file = join(root, 'torn.jsonl')
    writeFileSync(file, '{"n":1}\n{"n":2}\n{"n"')
    expect(await readJsonl(file, number)).toEqual([1, 2])
  })

  it('a failed write rejects its own append only', async () => {
    const dir = join(root, 'made-late')
    const log = new JsonlLog(join(dir, 'log.jsonl'))
    await expect(log.append({ n: 1 })).rejects.toMatchObject({ code: 'ENOENT' })
    mkdirSync(dir)
    await log.append({ n: 2 })
    expect(await readJsonl(join(dir, 'log.jsonl'), number)).toEqual([2])
  })
})
