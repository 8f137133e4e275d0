import { statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { TroupeError } from '../../core/errors.ts'
import type { ModuleAgentSpec } from '../../plan/agent-spec.ts'
import type { AgentLoadProblem } from './protocol.ts'

export interface AgentCheckOptions {
  /** Runs the worker entry's `checkAgents(urls)` in a worker thread. */
  readonly load: (urls: readonly string[], signal: AbortSignal) => Promise<AgentLoadProblem[]>
  /** A module still loading after this long fails the check (a top-level `await` that never settles). */
  readonly timeoutMs: number
}

interface Checked {
  readonly mtimeMs: number
  readonly problem: Promise<AgentLoadProblem | undefined>
}

/**
 * Loads a plan's agent modules once, in a worker thread, before the run's first task: a
 * module that cannot load fails the run up front with `ERR_AGENT_LOAD`, and agent top-level
 * code never runs on the main thread. Results are cached by module URL and file mtime, so a
 * plan of 100,000 tasks, or a runtime running it again, checks each file once.
 */
export class AgentChecker {
  readonly #options: AgentCheckOptions
  readonly #cache = new Map<string, Checked>()

  constructor(options: AgentCheckOptions) {
    this.#options = options
  }

  /** Resolves once every agent loads; rejects with a TroupeError `ERR_AGENT_LOAD` naming the first that does not. */
  async check(agents: readonly ModuleAgentSpec[]): Promise<void> {
    const names = new Map<string, string[]>()
    for (const agent of agents) {
      const list = names.get(agent.moduleUrl)
      if (list === undefined) names.set(agent.moduleUrl, [agent.name])
      else list.push(agent.name)
    }
    const results: Promise<AgentLoadProblem | undefined>[] = []
    const unchecked: string[] = []
    for (const url of names.keys()) {
      const mtimeMs = mtimeOf(url)
      if (mtimeMs === undefined) {
        results.push(Promise.resolve({ moduleUrl: url, message: 'the file does not exist' }))
        continue
      }
      const cached = this.#cache.get(url)
      if (cached !== undefined && cached.mtimeMs === mtimeMs) results.push(cached.problem)
      else unchecked.push(url)
    }
    if (unchecked.length > 0) {
      // The file's mtime in the URL: the checker thread's module cache must not answer for an edited file.
      const versions = unchecked.map((url) => ({ url, mtimeMs: mtimeOf(url) ?? -1 }))
      const batch = this.#load(versions.map((v) => `${v.url}?troupe-mtime=${v.mtimeMs}`))
      versions.forEach(({ url, mtimeMs }, i) => {
        const problem = batch.then((problems) => {
          const found = problems[i]
          return found === undefined ? undefined : { ...found, moduleUrl: url }
        })
        this.#cache.set(url, { mtimeMs, problem })
        results.push(problem)
      })
    }
    const problem = (await Promise.all(results)).find((p) => p !== undefined)
    if (problem === undefined) return
    const who = names.get(problem.moduleUrl)!.map((name) => `"${name}"`).join(', ')
    const file = fileURLToPath(problem.moduleUrl)
    throw new TroupeError(
      'ERR_AGENT_LOAD',
      problem.location === undefined
        ? `Agent ${who} cannot be loaded from ${file}: ${problem.message}`
        : `Agent ${who} does not parse: ${problem.location}: ${problem.message}`,
    )
  }

  /**
   * Loads `urls` in the checker thread; the answer holds each URL's problem at its index.
   * Never rejects: a crash or timeout is a problem of every module in the batch.
   */
  async #load(urls: readonly string[]): Promise<(AgentLoadProblem | undefined)[]> {
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(), this.#options.timeoutMs)
    timer.unref()
    try {
      const problems = await this.#options.load(urls, timeout.signal)
      return urls.map((url) => problems.find((p) => p.moduleUrl === url))
    } catch (error) {
      const message = timeout.signal.aborted
        ? `the module did not finish loading within ${this.#options.timeoutMs} ms`
        : `loading the module ended its thread: ${(error as Error).message}`
      // A timeout may be the machine's fault: do not keep it.
      if (timeout.signal.aborted) for (const url of urls) this.#cache.delete(url.slice(0, url.lastIndexOf('?')))
      return urls.map((moduleUrl) => ({ moduleUrl, message }))
    } finally {
      clearTimeout(timer)
    }
  }
}

function mtimeOf(url: string): number | undefined {
  try {
    return statSync(fileURLToPath(url)).mtimeMs
  } catch {
    return undefined
  }
}
