/**
 * Piscina worker entry: loads an agent module and runs one attempt. Keep imports minimal:
 * every import here is paid by every new thread. The ctx channel to the main thread is
 * opened lazily, so an agent that never touches `ctx` costs no MessagePort and no comlink.
 */
import { MessageChannel, parentPort, threadId } from 'node:worker_threads'
import {
  ABORT_MESSAGE,
  CTX_PORT_MESSAGE,
  PROBE_MESSAGE,
  PROBE_MS,
  THREAD_MESSAGE,
  type AgentLoadProblem,
  type AttemptKey,
  type ClaimResult,
  type HostApi,
  type RepairContext,
  type ScratchpadNote,
  type ExecOptions,
  type ExecResult,
  type WorkerError,
  type WorkerResult,
  type WorkerTask,
  errorCause,
} from './protocol.ts'
import type { UsageReport } from '../../admission/usage.ts'

type Agent = (input: unknown, ctx: AgentContext) => unknown

/** The second argument of an agent. See docs/agents.md "Module agents". */
export interface AgentContext {
  readonly taskId: string
  readonly runId: string
  /** 1-based. */
  readonly attempt: number
  /** Outputs of this task's direct dependencies, by task id. */
  readonly dependencies: Readonly<Record<string, unknown>>
  /** The model configured for this agent (`config.models`), if any. */
  readonly model: string | undefined
  /** The task's own git worktree (plan `workspace: worktree`): work and write files here. */
  readonly workspace: string | undefined
  /** First port of a block of 10 no other running worktree task holds (with `workspace`). */
  readonly port: number | undefined
  /** Set when this run repairs the attempt's work: what failed (worktree tasks with `repair`; docs/workspaces.md). */
  readonly repair: RepairContext | undefined
  /** Aborted when the run is cancelled or the attempt times out; the thread is terminated after a grace period. */
  readonly signal: AbortSignal
  /** Reports progress (0..1) with an optional message. */
  progress(fraction: number, message?: string): Promise<void>
  log(message: string): Promise<void>
  /**
   * Claims a file or resource (path or glob) discovered at run time. Answers at once: not
   * granted (with the holder's task id) when a running task holds an overlapping claim.
   * Everything claimed is released when the attempt ends, however it ends.
   */
  claim(path: string): Promise<ClaimResult>
  /** Gives back a claim taken with {@link claim} before the attempt ends. */
  release(path: string): Promise<void>
  /**
   * Waits for one unit of the named limit (`config.limits.NAME`) and returns the function
   * that gives it back. Units still held when the attempt ends are given back then.
   * @example
   * const done = await ctx.acquire('llm')
   * try { return await callModel(input) } finally { await done() }
   */
  acquire(name: string): Promise<() => Promise<void>>
  /** Reports spend for `RunResult.usage` and `budget.maxCostUsd`; numbers must be finite and >= 0. */
  usage(report: UsageReport): Promise<void>
  /**
   * The run's shared scratchpad: append-only notes `{ taskId, at, text }` every agent of the
   * run can read and add to (CLI agents through the MCP tools), journaled and kept on resume.
   */
  /**
   * Runs `command` with `args` (no shell) in a process group of its own, tied to the
   * attempt: when the attempt ends however it ends, the group and everything it started get
   * SIGTERM, then SIGKILL after the grace period. Resolves with the exit code and the last
   * 64 KiB of stdout and of stderr; rejects when the command cannot start.
   */
  exec(command: string, args?: readonly string[], options?: ExecOptions): Promise<ExecResult>
  /**
   * Adds tasks to the running DAG: the same fields as a plan's tasks; `dependsOn` may name
   * tasks of the run or of this call. They obey the run's limits, claims and budget. Resolves
   * with their ids once added; with `{ wait: true }`, once they have all ended, with each
   * one's output by id — the attempt gives its slot back while it waits. Rejects with an error
   * whose `code` is the plan's (ERR_PLAN_INVALID, ERR_PLAN_DUPLICATE_ID, ERR_PLAN_CYCLE, …) when
   * the tasks are invalid (nothing is added), or ERR_DEPENDENCY_FAILED when a waited-for task
   * did not complete.
   * @example
   * const outputs = await ctx.spawn(files.map((f) => ({ id: `lint:${f}`, agent: 'lint', input: { f } })), { wait: true })
   */
  spawn(tasks: readonly Record<string, unknown>[], options: { readonly wait: true }): Promise<Readonly<Record<string, unknown>>>
  spawn(tasks: readonly Record<string, unknown>[], options?: { readonly wait?: false }): Promise<readonly string[]>
  readonly scratchpad: {
    read(): Promise<readonly ScratchpadNote[]>
    append(text: string): Promise<ScratchpadNote>
  }
}

const agents = new Map<string, Promise<Agent>>()
/** Agents loaded: a task of a loaded agent starts without waiting for a promise. */
const loaded = new Map<string, Agent>()

function loadAgent(url: string): Promise<Agent> {
  let agent = agents.get(url)
  if (agent === undefined) {
    agent = importModule(url).then((mod) => {
      const fn = pickDefault(mod)
      if (typeof fn !== 'function') {
        throw new TypeError(`the module's default export is ${fn === undefined ? 'missing' : `a ${typeof fn}`}, expected a function (input, ctx) => output`)
      }
      loaded.set(url, fn as Agent)
      return fn as Agent
    })
    // A failed load is not cached: the file may be fixed before a retry.
    agent.catch(() => agents.delete(url))
    agents.set(url, agent)
  }
  return agent
}

async function importModule(url: string): Promise<Record<string, unknown>> {
  if (/\.m?ts(\?|$)/.test(url)) {
    const { tsImport } = await import('tsx/esm/api')
    return (await tsImport(url, import.meta.url)) as Record<string, unknown>
  }
  return (await import(url)) as Record<string, unknown>
}

function pickDefault(mod: Record<string, unknown>): unknown {
  const value = mod.default
  // CommonJS modules loaded through import() put module.exports on `default`.
  if (typeof value === 'object' && value !== null && typeof (value as { default?: unknown }).default === 'function') {
    return (value as { default: unknown }).default
  }
  return value
}

// ---- pre-checks and warm-up (piscina's `name` option selects these exports) ----

/**
 * Loads each agent module as a task would, and reports those that cannot: a throw at import,
 * a default export that is not a function, a syntax error (with `path:line:column`, which
 * Node's ESM loader leaves out of the error, so a syntax check of the file finds it).
 */
export async function checkAgents(moduleUrls: readonly string[]): Promise<AgentLoadProblem[]> {
  const problems: AgentLoadProblem[] = []
  for (const moduleUrl of moduleUrls) {
    try {
      await loadAgent(moduleUrl)
    } catch (error) {
      const message = error instanceof Error ? `${error.name === 'Error' || error.name === 'TypeError' ? '' : `${error.name}: `}${error.message}` : String(error)
      const location = error instanceof Error && error.name === 'SyntaxError' ? await syntaxErrorLocation(moduleUrl) : undefined
      problems.push({ moduleUrl, message, ...(location === undefined ? {} : { location }) })
    }
  }
  return problems
}

/** `node --check FILE` prints `FILE:LINE`, the line, and a caret under the column. */
async function syntaxErrorLocation(moduleUrl: string): Promise<string | undefined> {
  const [{ spawnSync }, { fileURLToPath }] = await Promise.all([import('node:child_process'), import('node:url')])
  const file = fileURLToPath(moduleUrl)
  const { stderr } = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 })
  const lines = (stderr ?? '').split('\n')
  const at = lines.findIndex((line) => line.startsWith(`${file}:`))
  if (at === -1) return undefined
  const line = Number(lines[at]!.slice(file.length + 1))
  if (!Number.isSafeInteger(line)) return undefined
  const caret = lines[at + 2]?.indexOf('^') ?? -1
  return `${file}:${line}:${caret + 1 > 0 ? caret + 1 : 1}`
}

/** A no-op task: submitting several at once makes piscina start the threads a run needs. */
export function warm(): null {
  return null
}

// ---- ctx channel: one MessagePort per worker thread, opened on first use ----

let host: Promise<HostApi> | undefined
const abortControllers = new Map<AttemptKey, AbortController>()

function getHost(): Promise<HostApi> {
  host ??= import('comlink').then((Comlink) => {
    const { port1, port2 } = new MessageChannel()
    port1.on('message', (message: { type?: string; key?: AttemptKey }) => {
      if (message?.type === ABORT_MESSAGE && message.key !== undefined) {
        abortControllers.get(message.key)?.abort(new Error('troupe: attempt aborted'))
      }
    })
    // The port must not keep an idle worker alive on its own.
    port1.unref()
    parentPort!.postMessage({ type: CTX_PORT_MESSAGE, port: port2 }, [port2])
    return Comlink.wrap<HostApi>(port1 as unknown as Parameters<typeof Comlink.wrap>[0]) as unknown as HostApi
  })
  return host
}

function createContext(task: WorkerTask, pending: Promise<unknown>[]): AgentContext {
  const key = task.id
  let controller: AbortController | undefined
  const call = (fn: (api: HostApi) => unknown): Promise<void> => {
    const done = getHost().then(fn).then(() => undefined)
    pending.push(done)
    return done
  }
  const ask = <T>(fn: (api: HostApi) => T | PromiseLike<T>): Promise<T> => {
    const answer = getHost().then(fn)
    pending.push(answer)
    return answer
  }
  return {
    taskId: task.taskId,
    runId: task.runId,
    attempt: task.attempt,
    dependencies: task.dependencies,
    model: task.model,
    workspace: task.workspace,
    port: task.port,
    repair: task.repair,
    get signal() {
      if (controller === undefined) {
        controller = new AbortController()
        abortControllers.set(key, controller)
        void call((api) => api.watchAbort(key))
      }
      return controller.signal
    },
    progress: (fraction, message) => call((api) => api.progress(key, fraction, message)),
    log: (message) => call((api) => api.log(key, String(message))),
    claim: (path) => ask((api) => api.claim(key, String(path))),
    exec: (command, args = [], options = {}) => ask((api) => api.exec(key, String(command), [...args].map(String), { ...(options.cwd === undefined ? {} : { cwd: String(options.cwd) }), ...(options.env === undefined ? {} : { env: { ...options.env } }) })),
    scratchpad: {
      read: () => ask((api) => api.scratchpadRead(key)),
      append: (text) => ask((api) => api.scratchpadAppend(key, String(text))),
    },
    release: (path) => call((api) => api.release(key, String(path))),
    spawn: ((tasks: unknown, options?: { readonly wait?: boolean }) =>
      ask((api) => api.spawn(key, tasks, options?.wait === true)).then((reply) => {
        if (!reply.ok) throw Object.assign(new Error(reply.error.message), { name: 'TroupeError', code: reply.error.code })
        return options?.wait === true ? (reply.outputs ?? {}) : reply.added
      })) as AgentContext['spawn'],
    acquire: async (name) => {
      const api = await getHost()
      const lease = await api.acquire(key, String(name))
      let released: Promise<void> | undefined
      return () => (released ??= call((host) => host.releaseLease(key, lease)))
    },
    usage: (report) => {
      const checked = checkUsage(report)
      return call((api) => api.usage(key, { ...checked, model: checked.model ?? task.model }))
    },
  }
}

/** Throws a TypeError in the agent, where the mistake is, for a malformed usage report. */
function checkUsage(report: UsageReport): UsageReport {
  if (typeof report !== 'object' || report === null) throw new TypeError(`ctx.usage expects an object like { costUsd, tokens, apiCalls, model }, got ${String(report)}`)
  for (const field of ['costUsd', 'tokens', 'apiCalls'] as const) {
    const value = report[field]
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
      throw new TypeError(`ctx.usage: \`${field}\` must be a finite number >= 0, got ${String(value)} (${typeof value})`)
    }
  }
  if (report.model !== undefined && typeof report.model !== 'string') throw new TypeError(`ctx.usage: \`model\` must be a string, got ${typeof report.model}`)
  return { costUsd: report.costUsd, tokens: report.tokens, apiCalls: report.apiCalls, model: report.model }
}

// ---- one attempt ----

export default async function runAttempt(task: WorkerTask): Promise<WorkerResult> {
  const before = performance.eventLoopUtilization()
  const result = await attempt(task)
  // The thread's event loop active time over the attempt: its CPU, one attempt per thread.
  const used = performance.eventLoopUtilization(before)
  return { ...result, resources: { cpuMs: used.active, wallMs: used.active + used.idle } }
}

async function attempt(task: WorkerTask): Promise<WorkerResult> {
  let agent = loaded.get(task.moduleUrl)
  if (agent === undefined) {
    try {
      agent = await loadAgent(task.moduleUrl)
    } catch (error) {
      return fail('ERR_AGENT_LOAD', `Cannot load agent module ${task.moduleUrl}: ${messageOf(error)}`, error, false)
    }
  }
  const pending: Promise<unknown>[] = []
  if (task.shared === true) parentPort!.postMessage({ type: THREAD_MESSAGE, key: task.id, threadId })
  const probe = task.probe === true ? startProbe(task.id) : undefined
  try {
    const output = await agent(task.input, createContext(task, pending))
    // Progress and log calls travel on the ctx port, the result on piscina's: wait for them
    // so that none arrives after the task has ended.
    if (pending.length > 0) await Promise.allSettled(pending)
    if (!isCloneable(output)) {
      return fail('ERR_OUTPUT_NOT_CLONEABLE', `Agent output of task "${task.taskId}" cannot be structured-cloned (functions, symbols, class instances with private state are not allowed)`, undefined, false)
    }
    if (tooDeep(output)) {
      return fail('ERR_OUTPUT_NOT_CLONEABLE', `Agent output of task "${task.taskId}" is nested more than ${MAX_OUTPUT_DEPTH} levels deep; return a flatter value`, undefined, false)
    }
    return { ok: true, output }
  } catch (error) {
    await Promise.allSettled(pending)
    const retryable = (error as { retryable?: unknown })?.retryable === false ? false : undefined
    return fail('ERR_TASK_FAILED', `Agent of task "${task.taskId}" threw: ${messageOf(error)}`, error, retryable)
  } finally {
    if (probe !== undefined) clearTimeout(probe)
    if (abortControllers.size > 0) abortControllers.delete(task.id)
  }
}

/**
 * Tells the pool how busy this thread's event loop has been PROBE_MS after the agent was
 * called. An agent that never yields keeps the timer from firing: its silence answers.
 */
function startProbe(key: AttemptKey): ReturnType<typeof setTimeout> {
  const from = performance.eventLoopUtilization()
  return setTimeout(() => {
    const { utilization } = performance.eventLoopUtilization(from)
    parentPort!.postMessage({ type: PROBE_MESSAGE, key, utilization })
  }, PROBE_MS)
}

function isCloneable(value: unknown): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol')) return true
  try {
    structuredClone(value)
    return true
  } catch {
    return false
  }
}

/** Deeper outputs overflow the stack when piscina posts the result, and the attempt would never answer. */
const MAX_OUTPUT_DEPTH = 1_000

/** Whether `value` nests objects deeper than {@link MAX_OUTPUT_DEPTH} (iterative: no recursion to overflow). */
function tooDeep(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  const stack: [unknown, number][] = [[value, 1]]
  const seen = new Set<object>()
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (node === null || typeof node !== 'object' || seen.has(node)) continue
    if (depth > MAX_OUTPUT_DEPTH) return true
    seen.add(node)
    const children = node instanceof Map ? [...node.keys(), ...node.values()] : node instanceof Set ? [...node] : Object.values(node)
    for (const child of children) if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
  }
  return false
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function fail(code: WorkerError['code'], message: string, error: unknown, retryable: false | undefined): WorkerResult {
  const cause = error === undefined ? undefined : errorCause(error)
  return { ok: false, error: { code, message, ...(cause ? { cause } : {}), ...(retryable === false ? { retryable } : {}) } }
}
