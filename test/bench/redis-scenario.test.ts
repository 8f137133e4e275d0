import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import redis from '../../src/bench/scenarios/redis.ts'

const hasRedis = spawnSync('redis-server', ['--version']).status === 0

// Regression: `troupe bench` started outside the package's directory failed its Redis scenario
// (ERR_AGENT_MISMATCH: the bench agents' modules were outside the workers' checkout).
describe.skipIf(!hasRedis)('the bench Redis scenario', () => {
  it('measures from any working directory, and gives the working directory back', async () => {
    const elsewhere = mkdtempSync(`${tmpdir()}/troupe-bench-cwd-`)
    const before = process.cwd()
    process.chdir(elsewhere)
    try {
      const rows = await redis.run({ quick: true, dataDir: '', log: () => undefined })
      expect(rows.map((row) => row.scenario)).toEqual(['redis', 'redis'])
      expect(process.cwd()).toBe(elsewhere)
    } finally {
      process.chdir(before)
    }
  }, 120_000)
})
