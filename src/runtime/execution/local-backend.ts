import type { ResolvedConfig } from '../core/config.ts'
import type { AgentKind } from '../plan/agent-spec.ts'
import type { Executor } from './executor.ts'
import { LlmExecutor } from './llm/llm-executor.ts'
import { LocalExecutor } from './local-executor.ts'
import { WorkerPool } from './threads/pool.ts'

export interface LocalBackendOptions {
  /** Worker threads for module agents. */
  readonly threads: number
  readonly onError: (error: Error) => void
}

/**
 * This machine's executor for every agent kind, as a `troupe worker` builds it: module agents
 * on a worker-thread pool of `threads` threads, kept warm.
 */
export function createLocalExecutor(config: ResolvedConfig, options: LocalBackendOptions): Executor {
  const pool = new WorkerPool({
    minThreads: options.threads,
    maxThreads: options.threads,
    concurrentTasksPerWorker: 1,
    idleTimeoutMs: config.pool.idleTimeoutMs,
    perAgentMb: config.governor.memory.perAgentMb,
    loadTimeoutMs: config.timeoutMs,
    onError: options.onError,
  })
  const llm = new LlmExecutor({ prices: config.prices, now: () => Date.now() })
  return new LocalExecutor(
    new Map<AgentKind, Executor>([
      ['module', pool],
      ['openai', llm],
      ['anthropic', llm],
    ]),
  )
}
