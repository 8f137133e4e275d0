import { mkdtempSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig, resolveConfig } from '../../../src/runtime/core/config.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

describe('resolveConfig', () => {
  it('defaults maxParallel to the core count when the governor is off (nothing else bounds CPU)', () => {
    expect(resolveConfig({ governor: { enabled: false } }).maxParallel).toBe(availableParallelism())
  })

  it('fills every default', () => {
    const config = resolveConfig({})
    expect(config.maxParallel).toBe(Math.max(64, availableParallelism() * 4))
    expect(config.retry).toEqual({ maxRetries: 0, delayMs: 1000, backoff: 'exponential', maxDelayMs: 30000, jitter: false, rateLimitRetries: 5 })
    expect(config.governor.cpu).toEqual({ throttlePercent: 90, resumePercent: 75, targetPercent: 80 })
    expect(config.checkpoint).toEqual({ enabled: true, dir: '.troupe', rollbackOnFailure: false })
    expect(config.budget).toEqual({ maxCostUsd: null, onExceeded: 'pause' })
  })

  it('keeps explicit values and returns a frozen object', () => {
    const config = resolveConfig({ maxParallel: 3, pool: { maxThreads: 4 } })
    expect(config.maxParallel).toBe(3)
    expect(config.pool.maxThreads).toBe(4)
    expect(Object.isFrozen(config.pool)).toBe(true)
  })

  it.each([
    [{ maxParallel: 0 }, '`maxParallel` is `0` (number): expected a value greater than or equal to 1'],
    [{ maxParallel: 'many' }, '`maxParallel` is `"many"` (string): expected number'],
    [{ pool: { minThreads: 1.5 } }, '`pool.minThreads` is `1.5` (number): expected an integer'],
    [{ retry: { backoff: 'linear' } }, '`retry.backoff` is `"linear"` (string): expected "fixed" | "exponential"'],
    [{ governor: { cpu: { throttlePercent: 120 } } }, '`governor.cpu.throttlePercent` is `120` (number)'],
    [{ limits: { llm: { maxConcurrent: 0 } } }, '`limits.llm.maxConcurrent` is `0` (number)'],
    [{ budget: { onExceeded: 'panic' } }, '`budget.onExceeded` is `"panic"` (string)'],
    [{ maxParalel: 2 }, '`maxParalel` is not a config key (did you mean "maxParallel"?)'],
  ])('rejects %j with ERR_CONFIG_INVALID naming the key and value', (input, message) => {
    const error = troupeErrorOf(() => resolveConfig(input))
    expect(error.code).toBe('ERR_CONFIG_INVALID')
    expect(error.message).toContain(message)
  })

  it('reports every invalid key at once', () => {
    const error = troupeErrorOf(() => resolveConfig({ maxParallel: 0, timeoutMs: -1 }))
    expect(error.message).toContain('`maxParallel`')
    expect(error.message).toContain('`timeoutMs`')
  })

  it('rejects minThreads above maxThreads', () => {
    const error = troupeErrorOf(() => resolveConfig({ pool: { minThreads: 4, maxThreads: 2 } }))
    expect(error.code).toBe('ERR_CONFIG_INVALID')
    expect(error.message).toContain('`pool.minThreads` is `4` (number)')
  })

  it('rejects a resume threshold above the throttle threshold', () => {
    const error = troupeErrorOf(() => resolveConfig({ governor: { memory: { throttlePercent: 70, resumePercent: 80 } } }))
    expect(error.message).toContain('`governor.memory.resumePercent` is `80` (number)')
  })
})

describe('loadConfig', () => {
  it('reads troupe.config.json from the working directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-config-'))
    writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ maxParallel: 7 }))
    expect(loadConfig({ cwd: dir }).maxParallel).toBe(7)
  })

  it('uses defaults when there is no config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-config-'))
    expect(loadConfig({ cwd: dir }).timeoutMs).toBe(300_000)
  })

  it('names the file in the error for an invalid value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-config-'))
    const file = join(dir, 'custom.json')
    writeFileSync(file, JSON.stringify({ timeoutMs: 0 }))
    const error = troupeErrorOf(() => loadConfig({ file }))
    expect(error.code).toBe('ERR_CONFIG_INVALID')
    expect(error.message).toContain('custom.json')
    expect(error.message).toContain('`timeoutMs` is `0` (number)')
  })

  it('rejects a config file that is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-config-'))
    const file = join(dir, 'broken.json')
    writeFileSync(file, '{ maxParallel: 2 ')
    expect(troupeErrorOf(() => loadConfig({ file })).code).toBe('ERR_CONFIG_INVALID')
  })
})
