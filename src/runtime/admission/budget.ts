import type { Priority } from '../plan/plan.ts'

/**
 * Where a run stands against `budget.maxCostUsd`: `open`, `critical-only` from 90 % of
 * the budget (only `critical` tasks start), `exceeded` once spend reaches it (none start).
 */
export type BudgetLevel = 'open' | 'critical-only' | 'exceeded'

/** Share of the budget above which only critical tasks start. */
export const CRITICAL_ONLY_SHARE = 0.9

export function budgetLevel(spentUsd: number, maxCostUsd: number | null): BudgetLevel {
  if (maxCostUsd === null) return 'open'
  if (spentUsd >= maxCostUsd) return 'exceeded'
  return spentUsd >= CRITICAL_ONLY_SHARE * maxCostUsd ? 'critical-only' : 'open'
}

/** Whether a task of `priority` may start at budget `level`. */
export function budgetAdmits(level: BudgetLevel, priority: Priority): boolean {
  return level === 'open' || (level === 'critical-only' && priority === 'critical')
}
