import { beforeAll, describe, expect, it } from 'vitest'

// The library's public surface (`import … from 'troupe'`, src/index.ts). What users need:
// build, check, simulate and run plans, read results (and the result files, with the codec
// that wrote them), handle errors. Not the config schema, journal paths, limits' constants or
// the governor's probe: those stay inside, so they can change without a major version.

/** The runtime values of the public entry, exactly. */
const PUBLIC = [
  'createRuntime',
  'runPlan',
  'Runtime',
  'Run',
  'loadPlan',
  'compilePlan',
  'loadConfig',
  'analyzePlan',
  'simulate',
  'validateSchedule',
  'parseTroupeJson',
  'stringifyTroupeJson',
  'TroupeError',
  'isTroupeError',
  'ERROR_CODES',
  'TASK_STATES',
  'STRATEGIES',
  'PRIORITIES',
].sort()

/** Exported until this round; internal now (regression guard: none comes back by accident). */
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
  'SystemProbe',
]

let names: string[] = []

describe('the public API (src/index.ts)', () => {
  // Loading the whole library can take a while on a busy machine.
  beforeAll(async () => {
    names = Object.keys(await import('../../src/index.ts')).sort()
  }, 120_000)

  it('exports exactly the public runtime values', () => {
    expect(names).toEqual(PUBLIC)
  })

  it('exports none of the internal names it once did', () => {
    expect(INTERNAL.filter((name) => names.includes(name))).toEqual([])
  })
})
