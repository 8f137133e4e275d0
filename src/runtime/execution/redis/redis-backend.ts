import type { CompiledPlan } from '../../plan/plan.ts'
import type { Backend } from '../backend.ts'
import { LazyExecutor } from '../lazy-executor.ts'
import { checkReachable, type RedisTarget } from './connection.ts'

/**
 * The Redis backend (`backend: 'redis://…'`): attempts go to BullMQ workers started with
 * `troupe worker`, whose own pools bound them, so it adds no gate. `checks` is this machine's
 * backend, used only to check before a run that its module agents load (one thread, none
 * warmed for tasks); it is closed with this one.
 */
export function createRedisBackend(target: RedisTarget, checks: Pick<Backend, 'prepare' | 'close'>): Backend {
  // bullmq and ioredis are loaded with the first remote attempt, never for a local runtime.
  const executor = new LazyExecutor(target.url, async () => new (await import('./redis-executor.ts')).RedisExecutor(target))
  return {
    executor,
    gates: [],
    prepare: async (plan: CompiledPlan) => checks.prepare?.(plan, 1),
    ready: () => checkReachable(target),
    close: async (force) => {
      await Promise.all([executor.close(force), checks.close(force)])
    },
  }
}
