import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { checkOptions } from '../../src/runtime/options.ts'
import { resolveConfig } from '../../src/runtime/core/config.ts'
import { createRuntime, runPlan, type Runtime } from '../../src/runtime/runtime.ts'
import { troupeErrorOf } from '../helpers/errors.ts'

const echo = join(import.meta.dirname, '..', 'fixtures', 'agents', 'echo.mjs')
const plan = { agents: { echo }, tasks: [{ id: 'a', agent: 'echo' }] }
const quiet = { checkpoint: { enabled: false }, governor: { enabled: false }, pool: { minThreads: 0, maxThreads: 1 } }

describe('checkOptions', () => {
  it('accepts every documented option, and undefined values as not given', () => {
    expect(() => checkOptions('run', { runId: undefined, signal: new AbortController().signal, maxParallel: 2, strategy: 'waves', baseDir: '.' })).not.toThrow()
  })

  it('rejects a misspelt run option with ERR_ARGUMENT_INVALID and did-you-mean', () => {
    const error = troupeErrorOf(() => checkOptions('run', { maxParalel: 3 }))
    expect([error.code, error.message]).toEqual(['ERR_ARGUMENT_INVALID', expect.stringContaining('`options.maxParalel` is not a run option key (did you mean "maxParallel"?)')])
  })

  it('rejects run options that are not an object, naming the value', () => {
    const error = troupeErrorOf(() => checkOptions('run', 'id-42'))
    expect([error.code, error.message]).toEqual(['ERR_ARGUMENT_INVALID', expect.stringContaining('`options` is `"id-42"` (string): expected an object of run options')])
  })

  it('rejects a maxParallel above the documented maximum', () => {
    expect(troupeErrorOf(() => checkOptions('run', { maxParallel: 100_000_000 })).message).toContain('expected an integer from 1 to 10000')
  })
})

describe('options of the entry points', () => {
  let runtime: Runtime | undefined
  afterEach(async () => {
    await runtime?.close()
    runtime = undefined
  })

  it('regression: createRuntime({ maxParallel }) was ignored; now it points to config.maxParallel', () => {
    const error = troupeErrorOf(() => createRuntime({ maxParallel: 4 } as never))
    expect([error.code, error.message]).toEqual(['ERR_ARGUMENT_INVALID', expect.stringContaining('did you mean `config.maxParallel`?')])
  })

  it('regression: createRuntime({ confg }) was ignored; now it suggests config', () => {
    const error = troupeErrorOf(() => createRuntime({ confg: { maxParallel: 2 } } as never))
    expect([error.code, error.message]).toEqual(['ERR_ARGUMENT_INVALID', expect.stringContaining('`options.confg` is not a createRuntime option key (did you mean "config"?)')])
  })

  it('regression: run(plan, { maxParalel }) was ignored', () => {
    runtime = createRuntime({ config: quiet })
    const r = runtime
    expect(troupeErrorOf(() => r.run(plan, { maxParalel: 3 } as never)).code).toBe('ERR_ARGUMENT_INVALID')
  })

  it("regression: run(plan, 'id-42') was taken as no options", () => {
    runtime = createRuntime({ config: quiet })
    const r = runtime
    expect(troupeErrorOf(() => r.run(plan, 'id-42' as never)).code).toBe('ERR_ARGUMENT_INVALID')
  })

  it('regression: runPlan(plan, { maxParalel }) was ignored', async () => {
    await expect(runPlan(plan, { config: quiet, maxParalel: 3 } as never)).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID', message: expect.stringContaining('did you mean "maxParallel"') })
  })

  it('runPlan hands runtime options to the runtime and run options to the run', async () => {
    const result = await runPlan(plan, { config: quiet, maxParallel: 1, runId: 'split-options' })
    expect([result.status, result.runId, result.maxParallel]).toEqual(['completed', 'split-options', 1])
  })

  it('regression: a frozen partial config crashed with a TypeError; now it is resolved', () => {
    runtime = createRuntime({ config: Object.freeze({ ...quiet, maxParallel: 2 }) })
    expect([runtime.config.maxParallel, runtime.config.retry.maxRetries]).toEqual([2, 0])
  })

  it('a frozen config that only looks resolved is resolved again (and validated)', () => {
    const lookalike = Object.freeze({ maxParallel: 2, pool: Object.freeze({ maxThreads: 4 }) })
    runtime = createRuntime({ config: lookalike })
    expect(runtime.config.governor.enabled).toBe(true)
  })

  it('a config made by resolveConfig is used as is', () => {
    const config = resolveConfig(quiet)
    runtime = createRuntime({ config })
    expect(runtime.config).toBe(config)
  })
})
