import { beforeAll, describe, expect, it } from 'vitest'

// The library's public surface (`import … from 'troupe'`, src/index.ts). What users need:
// build and run plans, read results and events, write agents, handle errors. Not the
// config schema, the scheduler's simulator, journal paths, plan compilation internals or
// limits' constants: those stay inside, so they can change without a major version.

/** The runtime values users need. */
const NEEDED = [
  'createRuntime',
  'runPlan',
  'Runtime',
  'Run',
  'loadPlan',
  'compilePlan',
  'loadConfig',
  'analyzePlan',
  'TroupeError',
  'isTroupeError',
  'ERROR_CODES',
  'TASK_STATES',
  'STRATEGIES',
  'PRIORITIES',
].sort()

/** Exported today, proposed to go (internal). */
const INTERNAL = [
  'ConfigSchema',
  'resolveConfig',
  'CONFIG_FILE',
  'PLAN_STRATEGIES',
  'MAX_PARALLEL',
  'MAX_TIMEOUT_MS',
  'MAX_INPUT_DEPTH',
  'MAX_ADDED_PER_CALL',
  'classifyParallelization',
  'journalFile',
  'resultFile',
  'parseTroupeJson',
  'stringifyTroupeJson',
  'simulate',
  'validateSchedule',
  'SystemProbe',
]

let names: string[] = []

describe('the public API (src/index.ts)', () => {
  // Loading the whole library can take a while on a busy machine.
  beforeAll(async () => {
    names = Object.keys(await import('../../src/index.ts')).sort()
  }, 120_000)

  it('exports every runtime value users need', () => {
    expect(NEEDED.filter((name) => !names.includes(name))).toEqual([])
  })

  // TODO(lead): src/index.ts belongs to the perf engineer's branch; once the names in
  // INTERNAL are dropped from it, remove `.skip`.
  it.skip('exports only those: no config schema, simulator, journal paths or internal constants', () => {
    expect(names).toEqual(NEEDED)
  })

  it('still exports the internal names listed for removal (remove this test with the .skip above)', () => {
    expect(INTERNAL.filter((name) => !names.includes(name))).toEqual([])
  })
})
