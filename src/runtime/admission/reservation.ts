import { isCliKind, isLlmKind, type AgentKind } from '../plan/agent-spec.ts'
import type { BudgetStop } from './budget.ts'

/**
 * Spend reserved for attempts in flight, so a budget is not overrun by attempts that all start
 * before any of them has reported a cost (4 parallel CLI sessions once did). Each attempt is
 * reserved its agent's estimate: the mean spend of that agent's finished attempts. An agent
 * with no finished attempt yet has no estimate: one of its attempts runs at a time (under a
 * budget) until one finishes. While an attempt runs, what it has spent counts against its
 * reservation; whatever is left of it counts as committed.
 *
 * A task may start when `spent + outstanding reservations + its agent's estimate` fits in the
 * budget. Only consulted when `budget.maxCostUsd` is set.
 */
export class SpendReservations {
  /** Per agent: spend and count of finished attempts that reported spend. */
  readonly #finished = new Map<string, { total: number; n: number }>()
  /** Per running attempt (task index): its agent and what it has spent so far. */
  readonly #running = new Map<number, { readonly agent: string; spent: number }>()

  /** The mean spend of `agent`'s finished attempts, or undefined before one finished. */
  estimate(agent: string): number | undefined {
    const seen = this.#finished.get(agent)
    return seen === undefined ? undefined : seen.total / seen.n
  }

  started(index: number, agent: string): void {
    this.#running.set(index, { agent, spent: 0 })
  }

  spent(index: number, costUsd: number): void {
    const running = this.#running.get(index)
    if (running !== undefined) running.spent += costUsd
  }

  /** The attempt ended (however): its spend teaches its agent's estimate when it spent anything. */
  ended(index: number): void {
    const running = this.#running.get(index)
    if (running === undefined) return
    this.#running.delete(index)
    if (running.spent <= 0) return
    const seen = this.#finished.get(running.agent) ?? { total: 0, n: 0 }
    seen.total += running.spent
    seen.n++
    this.#finished.set(running.agent, seen)
  }

  /** What running attempts are expected to spend still: Σ max(0, estimate − spent so far). */
  outstanding(): number {
    let sum = 0
    for (const { agent, spent } of this.#running.values()) sum += Math.max(0, (this.estimate(agent) ?? 0) - spent)
    return sum
  }

  /**
   * Whether an attempt of `agent` may start with `spentUsd` spent of `maxCostUsd`: its estimate
   * fits beside what running attempts still hold; with no estimate, only when no attempt of
   * `agent` is running.
   */
  admits(agent: string, spentUsd: number, maxCostUsd: number): boolean {
    const estimate = this.estimate(agent)
    if (estimate === undefined) {
      for (const running of this.#running.values()) if (running.agent === agent) return false
      return spentUsd < maxCostUsd
    }
    return spentUsd + this.outstanding() + estimate <= maxCostUsd
  }
}

/** Whether attempts of this task are reserved for (its agent pays per model call). */
export function paysPerCall(task: { readonly agentSpec: { readonly kind: AgentKind } }): boolean {
  // Kinds that pay per model call (a CLI session, an LLM API call): the ones reserved for.
  return isCliKind(task.agentSpec.kind) || isLlmKind(task.agentSpec.kind)
}

/** The stop for a run whose ready tasks' estimates do not fit in what is left of the budget, with nothing running. */
export function reservationStop(
  spentUsd: number,
  budget: { readonly maxCostUsd: number | null; readonly onExceeded: 'pause' | 'fail' },
): BudgetStop {
  const message =
    `Budget nearly exhausted: agents reported $${spentUsd} of budget.maxCostUsd $${budget.maxCostUsd}; ` +
    'no ready task fits in what is left at its agent\'s mean spend per attempt, so none started'
  return { kind: budget.onExceeded === 'fail' ? 'budget-fail' : 'budget-pause', error: { code: 'ERR_BUDGET_EXCEEDED', message } }
}
