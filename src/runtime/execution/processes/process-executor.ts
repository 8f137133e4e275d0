import { rmSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { McpEndpoint, McpToolServer } from '../../coordination/mcp-server.ts'
import { Scratchpad } from '../../coordination/scratchpad.ts'
import type { ModelPrice } from '../../core/config.ts'
import type { CliKind } from '../../plan/agent-spec.ts'
import { isProcessAgent } from '../../plan/agent-spec.ts'
import { renderString, type TemplateScope } from '../../plan/templates.ts'
import { templateScopeOf, type AttemptHandle, type AttemptListener, type AttemptRequest, type AttemptResult, type Executor } from '../executor.ts'
import { createCliDriver } from './cli-drivers.ts'
import { CommandDriver } from './command.ts'
import { AttemptLog } from './log-file.ts'
import { LineSplitter, Tail } from './line-splitter.ts'
import type { ProcessDriver } from './process-driver.ts'
import { ProcessGroup } from './process-group.ts'
import { ResourceSampler } from './resource-sampler.ts'
import { processAlive } from '../../core/process-alive.ts'

export interface ProcessExecutorOptions {
  /** `config.prices`: token prices by agent and model name, for CLIs that report tokens only. */
  readonly prices?: Readonly<Record<string, ModelPrice>>
  /** The runtime's MCP server: each CLI-agent attempt gets the run tools through its MCP configuration. */
  readonly tools?: McpToolServer
  /**
   * `governor.memory.perProcessMb`: the most resident memory an attempt's whole process group
   * may hold, MB; over it the group is killed and the attempt fails with ERR_WORKER_OOM.
   * `null`/absent: no cap (RSS is still measured for the governor).
   */
  readonly maxRssMb?: number | null
}

/** The attempts' MCP config dirs that exist now: removed on exit too (a forced exit skips the attempts' own clean-up). */
const liveMcpDirs = new Set<string>()
let mcpDirHookInstalled = false
/** Once per process, before its first MCP dir: the sweep of what killed troupes left. */
let swept: Promise<void> | undefined
/** `troupe-mcp-<pid>-XXXXXX`: the pid of the troupe process that made it, so a later troupe can remove what a killed one left. */
const MCP_DIR = /^troupe-mcp-(\d+)-/

function trackMcpDir(dir: string): void {
  liveMcpDirs.add(dir)
  if (mcpDirHookInstalled) return
  mcpDirHookInstalled = true
  process.on('exit', () => {
    for (const live of liveMcpDirs) rmSync(live, { recursive: true, force: true })
  })
}

/** Removes MCP config dirs whose troupe process is gone (it was SIGKILLed: no exit hook ran). */
async function sweepOrphanMcpDirs(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[])
  for (const name of names) {
    const pid = Number(MCP_DIR.exec(name)?.[1])
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined)
  }
}

/** Longest line sent to `listener.onLog` (the log file and tails keep more). */
const LOG_LINE_MAX = 4096
/** A coding-agent CLI's start-up (Claude Code: 3.5–4.5 s from spawn to its first model request). */
const CLI_WARMUP_MS = 5000
/** Characters of stdout and of stderr kept in a command's output. */
const TAIL_CHARS = 16 * 1024

/**
 * Runs `command` and coding-agent CLI attempts as OS processes, one process group per
 * attempt (see ProcessGroup): abort → SIGTERM to the group, SIGKILL after `graceMs`;
 * `close(true)` kills every group at once.
 */
export class ProcessExecutor implements Executor {
  readonly name = 'local'
  readonly #prices: Readonly<Record<string, ModelPrice>>
  readonly #groups = new Set<ProcessGroup>()
  readonly #inFlight = new Set<Promise<AttemptResult>>()
  readonly #sampler = new ResourceSampler()
  readonly #tools: McpToolServer | undefined
  readonly #maxRssMb: number | null

  constructor(options: ProcessExecutorOptions = {}) {
    this.#maxRssMb = options.maxRssMb ?? null
    this.#prices = options.prices ?? {}
    this.#tools = options.tools
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const agent = request.agent
    if (!isProcessAgent(agent)) {
      const message = `The process executor runs command and CLI agents, not "${agent.kind}" (agent "${agent.name}")`
      return { result: Promise.resolve({ ok: false, error: { code: 'ERR_AGENT_UNAVAILABLE', message, retryable: false } }), abort: () => {} }
    }
    const scope: TemplateScope = templateScopeOf(request)
    let driver: ProcessDriver
    let cwd: string
    const env: Record<string, string> = {}
    try {
      const log = (line: string) => listener.onLog(line.length > LOG_LINE_MAX ? `${line.slice(0, LOG_LINE_MAX)} [… ${line.length - LOG_LINE_MAX} characters cut]` : line)
      const context = { request, listener, scope, prices: this.#prices, log }
      driver = agent.kind === 'command' ? new CommandDriver(agent, context) : createCliDriver(agent, context)
      // A relative `cwd` is relative to where the task works (its worktree, else the plan's directory), as module paths are.
      const base = request.workspace ?? request.baseDir
      cwd = agent.cwd === undefined ? base : resolve(base, renderString(agent.cwd, scope, `agents.${agent.name}.cwd`))
      for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value
      for (const [key, value] of Object.entries(agent.env)) env[key] = renderString(value, scope, `agents.${agent.name}.env.${key}`)
      env.TROUPE_RUN_ID = request.runId
      env.TROUPE_TASK_ID = request.taskId
      env.TROUPE_ATTEMPT = String(request.attempt)
      // A repair (docs/workspaces.md "Repair"): which one, why, and the failure's text.
      for (const key of ['TROUPE_REPAIR', 'TROUPE_REPAIR_REASON', 'TROUPE_REPAIR_DETAIL']) delete env[key]
      if (request.repair !== undefined) {
        env.TROUPE_REPAIR = String(request.repair.number)
        env.TROUPE_REPAIR_REASON = request.repair.reason
        env.TROUPE_REPAIR_DETAIL = request.repair.detail
      }
    } catch (error) {
      const message = `Agent "${agent.name}" could not be prepared for task "${request.taskId}": ${(error as Error).message}`
      return { result: Promise.resolve({ ok: false, error: { code: 'ERR_TASK_FAILED', message, retryable: false } }), abort: () => {} }
    }
    if (agent.kind !== 'command' && this.#tools !== undefined) {
      const tools = this.#tools
      const log = (line: string) => listener.onLog(line.length > LOG_LINE_MAX ? `${line.slice(0, LOG_LINE_MAX)} [… ${line.length - LOG_LINE_MAX} characters cut]` : line)
      const withMcp = (mcpArgs: readonly string[]) => createCliDriver(agent, { request, listener, scope, prices: this.#prices, log, mcpArgs })
      return this.#withTools(tools, agent.kind, request, listener, withMcp, cwd, env)
    }
    return this.#spawn(request, driver, cwd, env)
  }

  /**
   * A CLI attempt with the run tools: binds an MCP URL to the attempt, hands it to the CLI in
   * its own configuration (files in a temp dir of the attempt's), and revokes the URL and
   * removes the dir when the attempt ends, however it ends. Claims taken over MCP are the
   * task's: the run releases them when the attempt's slot is freed.
   */
  #withTools(tools: McpToolServer, kind: CliKind, request: AttemptRequest, listener: AttemptListener, driverWith: (mcpArgs: readonly string[]) => ProcessDriver, cwd: string, env: Record<string, string>): AttemptHandle {
    let aborted = false
    // Ends a wait_tasks call in progress when the attempt is stopped (cancelled, timed out).
    const stopped = new AbortController()
    let inner: AttemptHandle | undefined
    const result = (async (): Promise<AttemptResult> => {
      let dir: string | undefined
      let endpoint: McpEndpoint | undefined
      try {
        await (swept ??= sweepOrphanMcpDirs())
        dir = await mkdtemp(join(tmpdir(), `troupe-mcp-${process.pid}-`))
        trackMcpDir(dir)
        // The run's, from the listener; an in-memory scratchpad when the run keeps none for its attempts.
        const scratchpad = listener.scratchpad?.() ?? (await Scratchpad.open(undefined))
        const mailbox = listener.mailbox?.()
        endpoint = await tools.bind({
          runId: request.runId,
          taskId: request.taskId,
          claim: (path) => listener.onClaim(path),
          release: (path) => listener.onRelease(path),
          progress: (fraction, message) => listener.onProgress(fraction, message),
          log: (message) => listener.onLog(message),
          scratchpad,
          addTasks: async (tasks) => {
            const answer = await listener.onSpawn(tasks, { wait: false })
            if (!answer.ok) throw new Error(`${answer.error.code}: ${answer.error.message}`)
            return { added: answer.added }
          },
          ...(listener.onWaitTasks === undefined ? {} : { waitTasks: (wait) => listener.onWaitTasks!(wait) }),
          stopped: stopped.signal,
          ...(mailbox === undefined ? {} : { mailbox }),
        })
        // Loaded here: a run of `command` agents never pays for the TOML writer and the tools' zod schemas.
        const { cliMcpConfig, writeCliMcpConfig } = await import('../../coordination/mcp-config.ts')
        const config = await cliMcpConfig(kind, endpoint.url, dir, env)
        await writeCliMcpConfig(config)
        if (aborted) return { ok: false, error: { code: 'ERR_CANCELLED', message: `Task "${request.taskId}" attempt ${request.attempt} was stopped before its process started` } }
        inner = this.#spawn(request, driverWith(config.args), cwd, { ...env, ...config.env })
        return await inner.result
      } catch (error) {
        return { ok: false, error: { code: 'ERR_TASK_FAILED', message: `Agent "${request.agent.name}" could not get the run tools: ${(error as Error).message}` } }
      } finally {
        endpoint?.revoke()
        if (dir !== undefined) {
          await rm(dir, { recursive: true, force: true }).catch(() => undefined)
          liveMcpDirs.delete(dir)
        }
      }
    })()
    this.#inFlight.add(result)
    void result.then(() => this.#inFlight.delete(result))
    return {
      result,
      abort: () => {
        aborted = true
        stopped.abort()
        inner?.abort()
      },
    }
  }

  #spawn(request: AttemptRequest, driver: ProcessDriver, cwd: string, env: Record<string, string>): AttemptHandle {
    const file = new AttemptLog(request.runDir, request.taskId, request.attempt)
    const stdoutTail = new Tail(TAIL_CHARS)
    const stderrTail = new Tail(TAIL_CHARS)
    const stdout = new LineSplitter(driver.maxLine, (line, dropped) => {
      file.write(line)
      driver.onStdoutLine(line, dropped)
    })
    const stderr = new LineSplitter(LOG_LINE_MAX * 4, (line) => {
      file.write(line)
      driver.onStderrLine(line)
    })
    const group = new ProcessGroup(driver.file, driver.args, {
      cwd,
      env,
      graceMs: request.graceMs,
      owner: { runDir: request.runDir, taskId: request.taskId, attempt: request.attempt },
      ...(driver.stdin === undefined ? {} : { input: driver.stdin }),
      onStdout: (chunk) => {
        stdoutTail.append(chunk.toString('utf8'))
        stdout.push(chunk)
      },
      onStderr: (chunk) => {
        stderrTail.append(chunk.toString('utf8'))
        stderr.push(chunk)
      },
    })
    this.#groups.add(group)
    // The memory cap (governor.memory.perProcessMb): the group's RSS over it kills the group.
    let overCapMb: number | undefined
    const maxRssMb = this.#maxRssMb
    const cap = maxRssMb === null ? undefined : { maxRssBytes: maxRssMb * 1024 * 1024, onExceeded: (rssBytes: number) => ((overCapMb = Math.round(rssBytes / 1024 / 1024)), group.kill()) }
    // A CLI's start-up burst is left out of what the governor learns (see ResourceSampler.track).
    const warmupMs = request.agent.kind === 'command' ? 0 : CLI_WARMUP_MS
    const sample = group.pid === undefined ? undefined : this.#sampler.track(group.pid, cap, warmupMs)
    let aborted = false
    const result = group.exited.then(async (exit): Promise<AttemptResult> => {
      stdout.end()
      stderr.end()
      this.#groups.delete(group)
      const resources = sample?.stop()
      await file.close()
      // Spend a CLI reported with its final result before it was stopped still counts.
      const late = driver.lateUsage?.()
      const usage = late === undefined ? {} : { usage: late }
      if (overCapMb !== undefined) {
        const message = `Task "${request.taskId}" attempt ${request.attempt}: its process group held ${overCapMb} MB resident, over governor.memory.perProcessMb (${maxRssMb} MB); the group was killed`
        return { ok: false, error: { code: 'ERR_WORKER_OOM', message }, resources, ...usage }
      }
      if (aborted) {
        const message = `Task "${request.taskId}" attempt ${request.attempt} was stopped (its process group got SIGTERM, then SIGKILL)`
        return { ok: false, error: { code: 'ERR_CANCELLED', message }, resources, ...usage }
      }
      let outcome: AttemptResult
      try {
        outcome = driver.finish(exit, { stdout: stdoutTail.toString(), stderr: stderrTail.toString() })
      } catch (error) {
        outcome = { ok: false, error: { code: 'ERR_TASK_FAILED', message: `Agent "${request.agent.name}": ${(error as Error).message}` } }
      }
      return resources === undefined ? outcome : { ...outcome, resources }
    })
    this.#inFlight.add(result)
    void result.then(() => this.#inFlight.delete(result))
    return {
      result,
      abort: () => {
        if (group.state !== 'running') return
        aborted = true
        group.stop(request.graceMs)
      },
    }
  }

  async close(force = false): Promise<void> {
    if (force) for (const group of this.#groups) group.kill()
    await Promise.all(this.#inFlight)
    this.#sampler.close()
  }
}

