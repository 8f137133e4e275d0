/**
 * The seed documents' own speedup examples, transcribed here as task graphs with their
 * durations in the seed's minutes and the speedup the seed claims (nothing is read from the
 * seed documents at run time). The bench runs them with
 * simulated agents at a reduced time scale and prints the claim beside the measurement.
 */
export interface SeedTask {
  readonly id: string
  /** Duration in the seed's minutes. */
  readonly minutes: number
  readonly dependsOn?: readonly string[]
  /** Pipeline stage (the seed's "phase"), for examples run with the pipeline strategy. */
  readonly stage?: string
}

export interface SeedExample {
  readonly name: string
  /** Which seed document and section, for the report. */
  readonly source: string
  /** Agents the seed runs at once. */
  readonly agents: number
  readonly strategy: 'concurrent' | 'pipeline'
  readonly tasks: readonly SeedTask[]
  /** The speedup figure the seed claims, verbatim enough to find it. */
  readonly claimed: string
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

export const SEED_EXAMPLES: readonly SeedExample[] = [
  {
    name: 'codebase analysis',
    source: 'seed 000, Example 1: 4 files x 30 s, 4 agents',
    agents: 4,
    strategy: 'concurrent',
    tasks: ['app.js', 'api.js', 'utils.js', 'config.js'].map((file) => ({ id: `analyze-${file}`, minutes: 0.5 })),
    claimed: '4x (120 s -> 30 s)',
  },
  {
    name: 'multi-feature implementation',
    source: 'seed 000, Example 2: auth 30, dashboard 40, settings 30 min, then QA 10 min, 3 agents',
    agents: 3,
    strategy: 'concurrent',
    tasks: [
      { id: 'auth', minutes: 30 },
      { id: 'dashboard', minutes: 40 },
      { id: 'settings', minutes: 30 },
      { id: 'qa', minutes: 10, dependsOn: ['auth', 'dashboard', 'settings'] },
    ],
    claimed: '3.3x (title; its own arithmetic: 2x)',
  },
  {
    name: 'documentation generation',
    source: 'seed 000, Example 3: 15 modules x 3 min, 5 agents',
    agents: 5,
    strategy: 'concurrent',
    tasks: range(15).map((i) => ({ id: `doc-module-${i}`, minutes: 3 })),
    claimed: '3.8x (45 min -> 12 min)',
  },
  {
    name: 'PRP generation',
    source: 'seed 004, case study: researcher 5, hunter 4, curator 5, then link validator 3, example extractor 4 min, 3 agents',
    agents: 3,
    strategy: 'concurrent',
    tasks: [
      { id: 'researcher', minutes: 5 },
      { id: 'hunter', minutes: 4 },
      { id: 'curator', minutes: 5 },
      { id: 'link-validator', minutes: 3, dependsOn: ['researcher', 'hunter', 'curator'] },
      { id: 'example-extractor', minutes: 4, dependsOn: ['researcher', 'hunter', 'curator'] },
    ],
    claimed: '2.3x (21 min -> 9 min, "57% faster"; measured 22 -> 9)',
  },
  {
    name: 'full-stack pipeline',
    source: 'seed 003, Full Stack Application: 6 phases, 2-3 min each, up to 3 agents',
    agents: 3,
    strategy: 'pipeline',
    tasks: [
      { id: 'architecture', minutes: 2, stage: 'architecture' },
      { id: 'requirements', minutes: 2, stage: 'requirements' },
      { id: 'database-schema', minutes: 2, stage: 'design' },
      { id: 'api-specification', minutes: 2, stage: 'design' },
      { id: 'ui-mockups', minutes: 2, stage: 'design' },
      { id: 'backend', minutes: 3, stage: 'development' },
      { id: 'frontend', minutes: 3, stage: 'development' },
      { id: 'integration', minutes: 2, stage: 'integration' },
      { id: 'qa-testing', minutes: 2, stage: 'integration' },
      { id: 'deployment', minutes: 2, stage: 'deployment' },
    ],
    claimed: '2.5x (30 min -> 12 min; text: 13 vs "30+")',
  },
]

/** Sum of the task minutes: the seed's sequential time, by its own durations. */
export function sequentialMinutes(example: SeedExample): number {
  return example.tasks.reduce((sum, t) => sum + t.minutes, 0)
}

/**
 * The ideal makespan in minutes: the critical path (with the pipeline's stage barriers) or
 * the work spread over the agents, whichever is longer.
 */
export function idealMinutes(example: SeedExample): number {
  const finish = new Map<string, number>()
  let stageStart = 0
  let stageEnd = 0
  let stage: string | undefined
  let criticalPath = 0
  for (const task of example.tasks) {
    if (example.strategy === 'pipeline' && task.stage !== stage) {
      stage = task.stage
      stageStart = stageEnd
    }
    const ready = Math.max(stageStart, ...(task.dependsOn ?? []).map((id) => finish.get(id)!))
    const end = ready + task.minutes
    finish.set(task.id, end)
    stageEnd = Math.max(stageEnd, end)
    criticalPath = Math.max(criticalPath, end)
  }
  return Math.max(criticalPath, sequentialMinutes(example) / example.agents)
}
