import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DEMAND_FILE, readDemandFile, writeDemandFile } from '../../../src/runtime/governor/demand-file.ts'
import { createRuntime } from '../../../src/runtime/runtime.ts'

const sleep = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'sleep.mjs')
const plan = { name: 'demand', agents: { sleep }, tasks: [{ id: 'a', agent: 'sleep', input: { ms: 50 } }] }

describe('demand.json (measured demand kept between runs)', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-demand-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('a run with the journal on stores what it measured per agent in the checkpoint dir', async () => {
    const runtime = createRuntime({ config: { checkpoint: { dir } } })
    await runtime.run(plan).result
    await runtime.close()
    expect(readDemandFile(dir)['sleep']).toMatchObject({ source: 'measured', samples: 1 })
  })

  it('keeps agents measured by earlier runs and not by this one', async () => {
    writeDemandFile(dir, { build: { cpu: 1.5, samples: 3, source: 'measured' } })
    const runtime = createRuntime({ config: { checkpoint: { dir } } })
    await runtime.run(plan).result
    await runtime.close()
    expect(Object.keys(readDemandFile(dir)).sort()).toEqual(['build', 'sleep'])
  })

  it('writes nothing with the journal off', async () => {
    const runtime = createRuntime({ config: { checkpoint: { enabled: false, dir } } })
    await runtime.run(plan).result
    await runtime.close()
    expect(existsSync(join(dir, DEMAND_FILE))).toBe(false)
  })

  it('stores measured estimates only, not what a plan declared', () => {
    writeDemandFile(dir, { declared: { cpu: 2, samples: 0, source: 'plan' } })
    expect(existsSync(join(dir, DEMAND_FILE))).toBe(false)
  })

  it('reads no estimates from a corrupt file, and skips entries without a CPU figure', () => {
    writeFileSync(join(dir, DEMAND_FILE), '{"version":1,"agents":{"ok":{"cpu":0.5,"samples":2},"bad":{"cpu":"x"}}}')
    expect(readDemandFile(dir)).toEqual({ ok: { cpu: 0.5, samples: 2, source: 'measured' } })
    writeFileSync(join(dir, DEMAND_FILE), '{ not json')
    expect(readDemandFile(dir)).toEqual({})
  })
})
