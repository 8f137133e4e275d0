/**
 * Strategies a run can use (scheduler, CLI `--strategy`). In a module of their own so the CLI
 * can offer them without loading the plan schema (and effect) for `troupe --version`.
 */
export const STRATEGIES = ['concurrent', 'sequential', 'pipeline', 'waves'] as const
export type Strategy = (typeof STRATEGIES)[number]
