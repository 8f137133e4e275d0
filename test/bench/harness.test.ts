import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { referenceDataDir } from '../../src/bench/data/reference-graph.ts'
import { checkGoals } from '../../src/bench/goals.ts'
import { runScenarios } from '../../src/bench/harness.ts'
import { runBench } from '../../src/bench/main.ts'
import stgQuality from '../../src/bench/scenarios/stg-quality.ts'
import { measureInterleaved } from '../../src/bench/measure.ts'
import {
  benchExitCode,
  defaultReportPath,
  formatMarkdown,
  formatTable,
  TABLE_WIDTH,
  writeReport,
  type BenchReport,
} from '../../src/bench/report.ts'
import { scenarioRow } from '../../src/bench/row.ts'
import type { Scenario, ScenarioRow } from '../../src/bench/scenario.ts'
import { SEED_EXAMPLES, idealMinutes, sequentialMinutes } from '../../src/bench/seed-examples.ts'
import { median, summarize } from '../../src/bench/stats.ts'

const base = { scenario: 's', label: 'l', parallelism: 4 }

function row(overrides: Partial<ScenarioRow> = {}): ScenarioRow {
  return { ...scenarioRow({ ...base, makespanMs: 100, sequentialMs: 400, idealMs: 100 }), ...overrides }
}

function scenario(name: string, run: Scenario['run']): Scenario {
  return { name, description: `${name} test scenario`, run }
}

const silent = { quick: true, dataDir: '/nonexistent', log: () => {}, command: 'test' }

describe('median', () => {
  it('takes the middle value of an odd count, whatever the order', () => {
    expect(median([9, 1, 5])).toBe(5)
  })

  it('averages the two middle values of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })

  it('refuses an empty list instead of returning NaN', () => {
    expect(() => median([])).toThrow(RangeError)
  })

  it('summarize keeps the samples in measurement order and reports the median absolute deviation', () => {
    const summary = summarize([10, 30, 20, 100])
    expect(summary).toMatchObject({ median: 25, min: 10, max: 100, samples: [10, 30, 20, 100] })
    expect(summary.mad).toBe(10)
  })
})

describe('scenarioRow', () => {
  it('is PARALLEL when the makespan is within 20 % of the ideal', () => {
    const r = scenarioRow({ ...base, makespanMs: 120, sequentialMs: 400, idealMs: 100 })
    expect(r).toMatchObject({ speedup: 3.333, efficiency: 0.833, ratioToIdeal: 1.2, verdict: 'PARALLEL' })
  })

  it('is PARTIAL when it misses the ideal but saves 20 % over sequential', () => {
    expect(scenarioRow({ ...base, makespanMs: 320, sequentialMs: 400, idealMs: 100 }).verdict).toBe('PARTIAL')
  })

  it('is SEQUENTIAL when it saves less than 20 % over sequential', () => {
    expect(scenarioRow({ ...base, makespanMs: 330, sequentialMs: 400, idealMs: 100 }).verdict).toBe('SEQUENTIAL')
  })

  it('rejects a zero time rather than printing an infinite speedup', () => {
    expect(() => scenarioRow({ ...base, makespanMs: 0, sequentialMs: 400, idealMs: 100 })).toThrow(/times must be > 0 ms/)
  })

  it('keeps the claimed figure and the extra figures', () => {
    const r = scenarioRow({ ...base, makespanMs: 100, sequentialMs: 400, idealMs: 100, claimed: '4x', extra: { n: 1 } })
    expect(r).toMatchObject({ claimed: '4x', extra: { n: 1 } })
  })
})

describe('benchExitCode', () => {
  it('is 0 when no row is SEQUENTIAL', () => {
    expect(benchExitCode([row(), row({ verdict: 'PARTIAL' })], [])).toBe(0)
  })

  it('is 1 when any row is SEQUENTIAL', () => {
    expect(benchExitCode([row(), row({ verdict: 'SEQUENTIAL' })], [])).toBe(1)
  })

  it('is 1 when a scenario failed', () => {
    expect(benchExitCode([row()], [{ scenario: 'x', error: 'boom' }])).toBe(1)
  })
})

describe('report', () => {
  it('defaults to a timestamped file under bench-results', () => {
    expect(defaultReportPath('/repo', new Date('2026-01-02T03:04:05.678Z'))).toBe('/repo/bench-results/bench-2026-01-02T03-04-05-678Z.json')
  })

  it('prints every column of a row in the table', () => {
    const text = formatTable([row({ claimed: '3.3x' })])
    const cells = ['scenario', 'vs ideal', '100 ms', '400 ms', '4.00x', '100%', '1.000', 'PARALLEL', '3.3x']
    for (const cell of cells) expect(text).toContain(cell)
  })

  it('fits every line of the table in 100 columns, long labels wrapped', () => {
    const label = '10,000-task random DAG, no-op agents, 2 threads, troupe vs raw piscina vs make -j (ideal: 5000 tasks/s)'
    const text = formatTable([row({ label, claimed: '3.3x', makespanMs: 123_456.7, sequentialMs: 9_876_543.2, verdict: 'SEQUENTIAL' })])
    expect(Math.max(...text.split('\n').map((line) => line.length))).toBeLessThanOrEqual(TABLE_WIDTH)
  })

  it('renders the same rows as a Markdown table', () => {
    expect(formatMarkdown([row()]).split('\n')[2]).toBe('| s | l | 100 ms | 400 ms | 4.00x | 100% | 100 ms | 1.000 | PARALLEL |  |')
  })

  it('writes the report as JSON, creating the directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-bench-test-'))
    try {
      const file = join(dir, 'nested', 'report.json')
      const report = { rows: [row()], exitCode: 0 } as unknown as BenchReport
      writeReport(report, file)
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(report)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('runScenarios', () => {
  it('records a scenario that throws as a failure and still runs the next one', async () => {
    const report = await runScenarios(
      [
        scenario('broken', async () => {
          throw new Error('boom')
        }),
        scenario('fine', async () => [row({ scenario: 'fine' })]),
      ],
      silent,
    )
    expect(report.failures).toEqual([{ scenario: 'broken', error: expect.stringContaining('boom') }])
    expect(report.rows.map((r) => r.scenario)).toEqual(['fine'])
    expect(report.exitCode).toBe(1)
  })

  it('exits 1 when a scenario reports a SEQUENTIAL row', async () => {
    const report = await runScenarios([scenario('slow', async () => [row({ verdict: 'SEQUENTIAL' })])], silent)
    expect(report.exitCode).toBe(1)
  })

  it('skips, in one line without a stack trace, a scenario whose reference data is missing', async () => {
    const lines: string[] = []
    const report = await runScenarios([stgQuality, scenario('fine', async () => [row({ scenario: 'fine' })])], { ...silent, log: (line) => lines.push(line) })
    expect(report.skipped).toEqual([{ scenario: 'stg-quality', reason: expect.stringContaining('stg/hard_subset.csv not found in /nonexistent') }])
    expect([report.failures, report.exitCode, report.rows.map((r) => r.scenario)]).toEqual([[], 0, ['fine']])
    expect(lines.filter((line) => /^\s+at /m.test(line))).toEqual([])
  })

  it('passes quick and the data directory to every scenario', async () => {
    const seen: unknown[] = []
    await runScenarios([scenario('a', async (options) => (seen.push([options.quick, options.dataDir]), []))], silent)
    expect(seen).toEqual([[true, '/nonexistent']])
  })
})

describe('referenceDataDir', () => {
  it('is the vendored data/ folder of the repository, so a clone needs nothing beside it', () => {
    expect(referenceDataDir()).toBe(process.env.TROUPE_DATA_DIR ?? join(import.meta.dirname, '..', '..', 'data'))
    expect(readdirSync(join(referenceDataDir(), 'stg'))).toEqual(expect.arrayContaining(['50', '100', 'hard_subset.csv', 'optimal_50_100.csv']))
  })
})

describe('runBench', () => {
  it('rejects an unknown scenario name with ERR_ARGUMENT_INVALID before running anything', async () => {
    await expect(runBench({ only: ['nope'] }, { stdout: () => {}, stderr: () => {}, cwd: tmpdir() })).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' })
  })
})

describe('measureInterleaved', () => {
  it('alternates the order of variants each round, after the warm-up rounds', async () => {
    const calls: string[] = []
    const variant = (name: string) => ({ name, run: async () => void calls.push(name) })
    const summaries = await measureInterleaved([variant('a'), variant('b')], { rounds: 3, warmupRounds: 1 })
    expect(calls).toEqual(['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a'])
    expect(summaries.get('a')!.samples).toHaveLength(3)
  })

  it('fails the measurement when a variant throws', async () => {
    const failing = { name: 'x', run: async () => Promise.reject(new Error('run failed')) }
    await expect(measureInterleaved([failing], { rounds: 1, warmupRounds: 0 })).rejects.toThrow('run failed')
  })
})

describe('seed examples', () => {
  const byName = new Map(SEED_EXAMPLES.map((e) => [e.name, e]))

  it('multi-feature: the ideal is the longest feature plus QA, not the claimed 3.3x', () => {
    const example = byName.get('multi-feature implementation')!
    expect([sequentialMinutes(example), idealMinutes(example)]).toEqual([110, 50])
  })

  it('documentation: 15 modules of 3 min on 5 agents take 9 min at best', () => {
    expect(idealMinutes(byName.get('documentation generation')!)).toBe(9)
  })

  it('PRP: two groups of 5 and 4 min, as the seed computes', () => {
    expect(idealMinutes(byName.get('PRP generation')!)).toBe(9)
  })

  it('full-stack pipeline: stage barriers make the ideal the sum of stage lengths', () => {
    const example = byName.get('full-stack pipeline')!
    expect([sequentialMinutes(example), idealMinutes(example)]).toEqual([22, 13])
  })
})

describe('checkGoals', () => {
  it('meets the cpu goal at 0.95 x cores', () => {
    const cpu = row({ scenario: 'cpu', speedup: 1.9, extra: { cores: 2 } })
    expect(checkGoals([cpu])).toEqual([{ goal: 'cpu speedup >= 0.95 x 2 cores', measured: '1.90x', met: true }])
  })

  it('misses the cpu goal just below 0.95 x cores', () => {
    expect(checkGoals([row({ scenario: 'cpu', speedup: 1.89, extra: { cores: 2 } })])[0]!.met).toBe(false)
  })

  it('misses the overhead goal below half of raw piscina throughput', () => {
    expect(checkGoals([row({ scenario: 'overhead', extra: { throughputRatio: 0.49 } })])[0]).toMatchObject({ measured: '49%', met: false })
  })

  it('misses the dag goal when the real makespan is over 5 % above the simulated one', () => {
    expect(checkGoals([row({ scenario: 'dag', label: 'STG 50/rand0000.stg, 4 workers', extra: { realVsSimulated: 1.051 } })])[0]!.met).toBe(false)
  })

  it('checks concurrent vs waves once per graph, on the concurrent row', () => {
    const extra = { concurrentAtLeastAsGood: true, strategiesDifferInSimulation: true, concurrentVsWaves: 0.5 }
    const rows = [row({ scenario: 'strategies', label: 'STG g, 4 workers: concurrent', extra }), row({ scenario: 'strategies', label: 'STG g, 4 workers: waves', extra })]
    expect(checkGoals(rows)).toEqual([{ goal: 'STG g: concurrent better than waves', measured: 'concurrent/waves x0.500', met: true }])
  })
})
