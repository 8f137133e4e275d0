/**
 * Strategies a run can use (plan `strategy`, scheduler, CLI `--strategy`). In a module of their
 * own so the CLI can offer them without loading the plan schema (and effect) for `troupe --version`.
 * `hybrid` runs the stages a plan declares (`stages:`), each with its own rule.
 */
export const STRATEGIES = ['concurrent', 'sequential', 'pipeline', 'waves', 'hybrid'] as const
export type Strategy = (typeof STRATEGIES)[number]

/** The strategies whose barrier groups are stages (`stage` of each task): pipeline and hybrid. */
export function isStaged(strategy: Strategy | undefined): strategy is 'pipeline' | 'hybrid' {
  return strategy === 'pipeline' || strategy === 'hybrid'
}
