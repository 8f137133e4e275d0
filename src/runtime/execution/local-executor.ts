import type { AgentKind } from '../plan/agent-spec.ts'
import type { AttemptHandle, AttemptListener, AttemptRequest, Executor } from './executor.ts'

/**
 * The embedded backend (`backend: local`): routes each attempt to the executor for its
 * agent's kind on this machine — module agents to the worker-thread pool; process, CLI
 * and LLM agents to theirs. Closing it closes them all.
 */
export class LocalExecutor implements Executor {
  readonly name = 'local'
  readonly #byKind: ReadonlyMap<AgentKind, Executor>
  readonly #all: readonly Executor[]

  constructor(byKind: ReadonlyMap<AgentKind, Executor>) {
    this.#byKind = byKind
    this.#all = [...new Set(byKind.values())]
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const executor = this.#byKind.get(request.agent.kind)
    if (executor === undefined) {
      const message = `No executor on this runtime runs agents of kind "${request.agent.kind}" (agent "${request.agent.name}")`
      return { result: Promise.resolve({ ok: false, error: { code: 'ERR_AGENT_UNAVAILABLE', message, retryable: false } }), abort: () => {} }
    }
    return executor.start(request, listener)
  }

  async close(force = false): Promise<void> {
    await Promise.all(this.#all.map((executor) => executor.close(force)))
  }
}
