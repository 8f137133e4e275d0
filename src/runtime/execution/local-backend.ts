import { McpToolServer } from '../coordination/mcp-server.ts'
import type { Clock } from '../core/clock.ts'
import type { ResolvedConfig } from '../core/config.ts'
import { WaitingThreads } from '../admission/waiting-threads.ts'
import type { AgentKind } from '../plan/agent-spec.ts'
import type { CompiledPlan } from '../plan/plan.ts'
import type { Backend } from './backend.ts'
import type { Executor } from './executor.ts'
import { LazyExecutor } from './lazy-executor.ts'
import { LlmExecutor } from './llm/llm-executor.ts'
import { LocalExecutor } from './local-executor.ts'
import { WorkerPool } from './threads/pool.ts'

export interface LocalBackendOptions {
  /** Worker threads for module agents: a fixed number (`troupe worker --concurrency`), or sized from config. */
  readonly threads?: number
  readonly clock: Clock
  readonly onError: (error: Error) => void
  /**
   * Serve the run tools to CLI agents over MCP (a server on 127.0.0.1 started with the first
   * CLI attempt, closed with the backend). `troupe worker` does too: the calls go to the coordinator.
   * @default false
   */
  readonly tools?: boolean
  /** Whether an agent's attempts may share a worker thread (it mostly waits); see PoolOptions.shares. */
  readonly shares?: (agent: string) => boolean | undefined
}

/**
 * This machine's executors: the worker-thread pool for module agents and the router over
 * every kind; its gate is the pool's thread slots, `prepare` the pool's agent checks and warm-up.
 */
export interface LocalBackend extends Backend {
  readonly pool: WorkerPool
  prepare(plan: CompiledPlan, parallelism: number): Promise<void>
}

/**
 * Builds this machine's executor for every agent kind, as `createRuntime` (backend `local`)
 * and `troupe worker` both need it: module agents on a worker-thread pool, command and CLI
 * agents as process groups, LLM agents through their SDKs.
 */
export function createLocalBackend(config: ResolvedConfig, options: LocalBackendOptions): LocalBackend {
  const pool = new WorkerPool({
    minThreads: options.threads ?? config.pool.minThreads,
    maxThreads: options.threads ?? (config.pool.autoSize ? undefined : config.pool.maxThreads),
    concurrentTasksPerWorker: config.pool.concurrentTasksPerWorker,
    idleTimeoutMs: config.pool.idleTimeoutMs,
    perAgentMb: config.governor.memory.perAgentMb,
    loadTimeoutMs: config.timeoutMs,
    onError: options.onError,
    ...(options.shares ? { shares: options.shares } : {}),
  })
  const tools = options.tools === true ? new McpToolServer() : undefined
  const llm = new LlmExecutor({ prices: config.prices, now: () => options.clock.now() })
  // Loaded with the first command or CLI attempt: a plan of module agents never loads execa.
  const processes = new LazyExecutor('local', async () => {
    const { ProcessExecutor } = await import('./processes/process-executor.ts')
    return new ProcessExecutor({
      prices: config.prices,
      maxRssMb: config.governor.memory.perProcessMb,
      ...(tools ? { tools } : {}),
    })
  })
  const executor = new LocalExecutor(
    new Map<AgentKind, Executor>([
      ['module', pool],
      ['command', processes],
      ['claude-code', processes],
      ['codex', processes],
      ['gemini', processes],
      ['openai', llm],
      ['anthropic', llm],
    ]),
  )
  return {
    pool,
    executor,
    // Thread slots bound module agents only; other kinds pass.
    gates: [new WaitingThreads(pool.slots)],
    prepare: (plan, parallelism) => pool.prepare(plan, parallelism),
    close: async (force) => {
      await executor.close(force)
      // After the CLI processes it serves have ended.
      await tools?.close()
    },
  }
}
