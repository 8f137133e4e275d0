import type { ScenarioRow } from './scenario.ts'

/** One of the goals, checked against a measured row. */
export interface GoalCheck {
  readonly goal: string
  readonly measured: string
  readonly met: boolean
}

const fixed = (value: unknown, digits = 2) => (typeof value === 'number' ? value.toFixed(digits) : String(value))

/**
 * The bench's goals (cpu speedup >= 0.95 x cores, io >= 0.95 x ideal, troupe >= 50 % of raw
 * piscina's no-op throughput, real STG makespans within 5 % of simulated, concurrent at least
 * as good as waves). Reported beside the table; only a SEQUENTIAL verdict fails the bench.
 */
export function checkGoals(rows: readonly ScenarioRow[]): GoalCheck[] {
  const checks: GoalCheck[] = []
  for (const row of rows) {
    const extra = row.extra ?? {}
    if (row.scenario === 'cpu' && typeof extra.cores === 'number') {
      checks.push({ goal: `cpu speedup >= 0.95 x ${extra.cores} cores`, measured: `${fixed(row.speedup)}x`, met: row.speedup >= 0.95 * extra.cores })
    } else if (row.scenario === 'io') {
      checks.push({ goal: `io ${row.label.split(',')[0]}: speedup >= 0.95 x ideal`, measured: `${fixed(row.efficiency * 100, 0)}% of ideal`, met: row.efficiency >= 0.95 })
    } else if (row.scenario === 'overhead' && typeof extra.throughputRatio === 'number') {
      checks.push({ goal: 'no-op throughput >= 50 % of raw piscina', measured: `${fixed(extra.throughputRatio * 100, 0)}%`, met: extra.throughputRatio >= 0.5 })
    } else if (row.scenario === 'dag' && typeof extra.realVsSimulated === 'number') {
      checks.push({ goal: `${row.label.split(',')[0]}: real within 5 % of simulated`, measured: `x${fixed(extra.realVsSimulated, 3)}`, met: extra.realVsSimulated <= 1.05 })
    } else if (typeof extra.ratioToMake === 'number' && row.label.includes('make -j')) {
      const goal = `${row.scenario} ${row.label.split(':')[0]}: troupe <= 1.05 x make -j`
      checks.push({ goal, measured: `x${fixed(extra.ratioToMake, 3)}`, met: extra.ratioToMake <= 1.05 })
    } else if (row.scenario === 'strategies' && row.label.endsWith('concurrent') && typeof extra.concurrentAtLeastAsGood === 'boolean') {
      const verb = extra.strategiesDifferInSimulation ? 'better than' : 'as good as'
      checks.push({ goal: `${row.label.split(',')[0]}: concurrent ${verb} waves`, measured: `concurrent/waves x${fixed(extra.concurrentVsWaves, 3)}`, met: extra.concurrentAtLeastAsGood })
    }
  }
  return checks
}

export function formatGoals(checks: readonly GoalCheck[]): string {
  return checks.map((c) => `${c.met ? 'met    ' : 'MISSED '} ${c.goal}: ${c.measured}`).join('\n')
}
