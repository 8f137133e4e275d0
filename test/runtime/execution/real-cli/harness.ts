import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import type { Run } from '../../../../src/runtime/run.ts'
import type { GeminiServer } from '../../../helpers/model-servers/gemini.ts'
import type { Script, ScriptedServer } from '../../../helpers/model-servers/scripted-server.ts'
import type { ResponsesServer } from '../../../helpers/model-servers/openai-responses.ts'
import { realCliPath, type RealCliKind } from '../../../helpers/real-clis.ts'

/**
 * A private temp dir for one test file, made the process's TMPDIR so the attempts' `troupe-mcp-*`
 * dirs land there (other suites on the machine make their own in /tmp at the same time).
 */
export function privateTmp(): { dir: string; mcpDirs: () => string[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-real-cli-'))
  const before = process.env.TMPDIR
  process.env.TMPDIR = dir
  return {
    dir,
    mcpDirs: () => readdirSync(dir).filter((name) => name.startsWith('troupe-mcp-')),
    cleanup: () => {
      if (before === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = before
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A user's Codex home pointing at a scripted Responses server (the way a user points Codex at a
 * proxy or local model: a `model_providers` entry with `wire_api = "responses"`), and the agent
 * environment that names it. `providerToml` goes into the provider's table (`request_max_retries`,
 * `stream_max_retries`, `stream_idle_timeout_ms`).
 */
export function codexUser(root: string, server: ResponsesServer, providerToml = ''): Record<string, string> {
  const home = mkdtempSync(join(root, 'codex-user-'))
  const config = [
    'model_provider = "scripted"',
    '[model_providers.scripted]',
    'name = "scripted"',
    `base_url = "${server.baseUrl}"`,
    'wire_api = "responses"',
    'env_key = "SCRIPTED_API_KEY"',
    providerToml,
    '',
  ]
  writeFileSync(join(home, 'config.toml'), config.join('\n'))
  return { CODEX_HOME: home, SCRIPTED_API_KEY: 'test-key' }
}

/** A user's Gemini home selecting API-key auth, and the environment pointing Gemini at a scripted server. */
export function geminiUser(root: string, server: GeminiServer, settings: Record<string, unknown> = {}): Record<string, string> {
  const home = mkdtempSync(join(root, 'gemini-user-'))
  mkdirSync(join(home, '.gemini'))
  writeFileSync(
    join(home, '.gemini', 'settings.json'),
    JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } }, ...settings }),
  )
  return { GEMINI_CLI_HOME: home, GOOGLE_GEMINI_BASE_URL: server.baseUrl, GEMINI_API_KEY: 'test-key' }
}

export interface CliTask {
  readonly id: string
  readonly prompt: string
  readonly env: Record<string, string>
  readonly model?: string
  readonly args?: readonly string[]
  readonly permissions?: 'read-only' | 'edit' | 'full'
  readonly dependsOn?: readonly string[]
  readonly timeoutMs?: number
  /** Named limits (`config.limits`) the task draws on. */
  readonly uses?: readonly string[]
}

/** A plan of real-CLI tasks, one agent per task. */
export function cliPlan(kind: RealCliKind, name: string, tasks: readonly CliTask[], extra: Partial<Plan> = {}): Plan {
  const bin = realCliPath(kind)!
  return {
    name,
    agents: Object.fromEntries(
      tasks.map((task) => [
        task.id,
        {
          kind,
          bin,
          env: task.env,
          ...(task.model === undefined ? {} : { model: task.model }),
          ...(task.args === undefined ? {} : { args: task.args }),
          ...(task.permissions === undefined ? {} : { permissions: task.permissions }),
        },
      ]),
    ),
    tasks: tasks.map((task) => ({
      id: task.id,
      agent: task.id,
      retries: 0,
      input: { prompt: task.prompt },
      ...(task.dependsOn === undefined ? {} : { dependsOn: task.dependsOn }),
      ...(task.timeoutMs === undefined ? {} : { timeoutMs: task.timeoutMs }),
      ...(task.uses === undefined ? {} : { uses: task.uses }),
    })),
    ...extra,
  } as Plan
}

/** Every task:log message of a run, by task. */
export function logsOf(run: Run): Record<string, string[]> {
  const logs: Record<string, string[]> = {}
  run.on('task:log', (event) => (logs[event.taskId] ??= []).push(event.message))
  return logs
}

/** The command lines of every live descendant of process `root` (read from /proc), as strings. */
export function descendantCmdlines(root: number = process.pid): string[] {
  const parents = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      // stat: "pid (comm) state ppid …"; comm may hold spaces or parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // The process ended meanwhile.
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let parent = parents.get(pid); parent !== undefined && parent > 1; parent = parents.get(parent)) if (parent === root) return true
    return false
  }
  const lines: string[] = []
  for (const pid of parents.keys()) {
    if (!isDescendant(pid)) continue
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '))
    } catch {
      // Gone.
    }
  }
  return lines
}

/**
 * The 429-storm acceptance, for any CLI: tasks `a` and `b` share the limit `llm` (2 at a time)
 * and `c` waits for a slot. `a`'s first two model calls get 429s, which its CLI retries by
 * itself; `b` finishes while `a`'s limits are paused, so only the pause keeps `c` from starting.
 * Returns what to assert: the pauses, the tasks, and when `a`'s retries reached its server.
 */
export async function rateLimitStorm(
  kind: RealCliKind,
  tasks: { a: CliTask; b: CliTask; c: CliTask },
): Promise<{ pauses: { until: number; at: number }[]; result: Awaited<Run['result']> }> {
  const { createRuntime } = await import('../../../../src/runtime/runtime.ts')
  const own = createRuntime({
    config: {
      maxParallel: 4,
      pool: { minThreads: 0, maxThreads: 1 },
      governor: { enabled: false },
      checkpoint: { enabled: false },
      limits: { llm: { maxConcurrent: 2 } },
    },
  })
  try {
    const plan = cliPlan(kind, 'storm', [
      { ...tasks.a, uses: ['llm'] },
      { ...tasks.b, uses: ['llm'] },
      { ...tasks.c, uses: ['llm'] },
    ])
    const run = own.run(plan)
    const pauses: { until: number; at: number }[] = []
    run.on('limit:paused', (event) => {
      if (event.limits.includes('llm')) pauses.push({ until: event.until, at: event.at })
    })
    return { pauses, result: await run.result }
  } finally {
    await own.close({ force: true })
  }
}

/** Polls `condition` every 50 ms until it holds. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50))
}

/**
 * The 429-storm acceptance, scripted and asserted for any CLI (see {@link rateLimitStorm}): the
 * limit pauses at once, none starts on it meanwhile, and nothing re-runs or FAILS. `server`
 * starts the CLI's scripted model server, `task` makes a task of it, `reply` a text answer.
 */
export async function expectRateLimitStormPauses<Reply extends object, Server extends Pick<ScriptedServer<Reply>, 'turns'>>(
  kind: RealCliKind,
  server: (script: Script<Reply>) => Promise<Server>,
  task: (s: Server, id: string, prompt: string) => CliTask,
  reply: (text: string) => NoInfer<Reply>,
): Promise<void> {
  let pausedAt: () => void = () => {}
  const paused = new Promise<void>((resolve) => (pausedAt = resolve))
  const a = await server([
    { fault: 'status', status: 429, retryAfterSeconds: 1 },
    { fault: 'status', status: 429, retryAfterSeconds: 1 },
    reply('a done'),
  ])
  const b = await server(async () => {
    await paused
    return reply('b done')
  })
  const c = await server([reply('c done')])
  const storm = rateLimitStorm(kind, { a: task(a, 'a', 'go'), b: task(b, 'b', 'go'), c: task(c, 'c', 'go') })
  await until(() => a.turns.length > 0)
  // b answers once a's limit is paused (or after a's retries, which would fail the asserts below).
  await until(() => a.turns.length > 1)
  pausedAt()
  const { pauses, result } = await storm
  expect(Object.values(result.tasks).map((t) => [t?.state, t?.attempts])).toEqual([
    ['COMPLETED', 1],
    ['COMPLETED', 1],
    ['COMPLETED', 1],
  ])
  expect(a.turns).toHaveLength(3)
  // Paused before the CLI's first retry reached the server: within the retry delay.
  expect(pauses.length).toBeGreaterThan(0)
  expect(pauses[0]!.at).toBeLessThanOrEqual(a.turns[1]!.receivedAt)
  const cStarted = result.tasks.c!.startedAt!
  for (const pause of pauses) expect(cStarted >= pause.at && cStarted < pause.until).toBe(false)
  expect(cStarted).toBeGreaterThanOrEqual(result.tasks.b!.finishedAt!)
}
