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

/** Why a run stops for its budget: the reason the run machine records (a leaf: no import of the actors). */
export interface BudgetStop {
  readonly kind: 'budget-pause' | 'budget-fail'
  readonly error: { readonly code: 'ERR_BUDGET_EXCEEDED'; readonly message: string }
}

/**
 * The stop for a run over its budget. `crossedBy` is the task whose reported usage crossed
 * it; without one, the run stalled: tasks are ready, but near or over the budget none may
 * start, and nothing running could change that.
 */
export function budgetStop(
  level: Exclude<BudgetLevel, 'open'>,
  spentUsd: number,
  budget: { readonly maxCostUsd: number | null; readonly onExceeded: 'pause' | 'fail' },
  crossedBy?: string,
): BudgetStop {
  const fail = budget.onExceeded === 'fail'
  const max = budget.maxCostUsd
  const message =
    crossedBy !== undefined
      ? `Budget exceeded: agents reported $${spentUsd} of budget.maxCostUsd $${max} (task "${crossedBy}" crossed it); ${fail ? 'running tasks were cancelled' : 'running tasks finished, no new task started'}`
      : level === 'exceeded'
        ? `Budget exceeded: agents reported $${spentUsd} of budget.maxCostUsd $${max}`
        : `Budget nearly exhausted: agents reported $${spentUsd} of budget.maxCostUsd $${max}; above 90 % only critical tasks start, and none is ready`
  return { kind: fail ? 'budget-fail' : 'budget-pause', error: { code: 'ERR_BUDGET_EXCEEDED', message } }
}
