import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { codex } from '../../../../src/runtime/execution/processes/codex.ts'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import { CLI_ENTRY } from '../../../helpers/cli.ts'
import { gitIn, tempRepo } from '../../../helpers/git-repo.ts'
import {
  callOutputs,
  inputItems,
  offeredTools,
  startResponsesServer,
  type ResponsesReply,
  type ResponsesServer,
} from '../../../helpers/model-servers/openai-responses.ts'
import type { Fault, RecordedRequest } from '../../../helpers/model-servers/scripted-server.ts'
import { hasRealCli } from '../../../helpers/real-clis.ts'
import { cliPlan, codexUser, descendantCmdlines, logsOf, privateTmp, expectRateLimitStormPauses, type CliTask, until } from './harness.ts'

// The real Codex CLI (test/helpers/real-clis.ts) against a scripted OpenAI Responses server, set
// up as a user would point Codex at a proxy: a model_providers entry in their config.toml.
const MODEL = 'gpt-5-codex'
const KIND = 'codex'
let tmp: ReturnType<typeof privateTmp>
let runtime: Runtime
const servers: ResponsesServer[] = []

beforeAll(() => {
  tmp = privateTmp()
  runtime = createRuntime({
    config: {
      maxParallel: 4,
      pool: { minThreads: 0, maxThreads: 1 },
      cancelGraceMs: 500,
      governor: { enabled: false },
      checkpoint: { enabled: false },
      models: { [MODEL]: { model: MODEL, inputUsdPerMTok: 2, cachedInputUsdPerMTok: 1, outputUsdPerMTok: 8 } },
    },
  })
})

afterAll(async () => {
  await runtime?.close({ force: true })
  await Promise.all(servers.map((server) => server.close()))
  tmp?.cleanup()
})

type ResponsesScript =
  | readonly (ResponsesReply | Fault)[]
  | ((request: RecordedRequest, turn: number) => ResponsesReply | Fault | Promise<ResponsesReply | Fault>)

async function server(script: ResponsesScript): Promise<ResponsesServer> {
  const started = await startResponsesServer(script)
  servers.push(started)
  return started
}

const task = (s: ResponsesServer, id: string, prompt: string, extra: Partial<CliTask> & { toml?: string } = {}): CliTask => ({
  id,
  prompt,
  env: codexUser(tmp.dir, s, extra.toml),
  model: MODEL,
  ...extra,
})
/** A call to one of troupe's MCP tools, as Codex offers them (namespace `mcp__troupe`). */
const troupe = (name: string, args: unknown) => ({ name, namespace: 'mcp__troupe', arguments: args })
const shell = (cmd: string) => ({ name: 'exec_command', arguments: { cmd } })
/** All call outputs a turn's request sends back, joined. */
const outputs = (request: RecordedRequest | undefined) => (request === undefined ? '' : Object.values(callOutputs(request)).join('\n'))
/** A directory outside any git repository. */
const plainDir = () => mkdtempSync(join(tmp.dir, 'plain-'))
/** A runtime of its own pricing MODEL at $2/M input and $8/M output, with `config` added (a budget). */
const pricedRuntime = (config: Record<string, unknown> = {}) =>
  createRuntime({
    config: {
      pool: { minThreads: 0, maxThreads: 1 },
      governor: { enabled: false },
      checkpoint: { enabled: false },
      models: { [MODEL]: { model: MODEL, inputUsdPerMTok: 2, outputUsdPerMTok: 8 } },
      ...config,
    },
  })
/** A one-task worktree plan of `s` whose task has `extra` (`check`, `repair`). */
const worktreeTask = (s: ResponsesServer, extra: Record<string, unknown>): Plan => {
  const plan = cliPlan('codex', 'checked', [task(s, 't', 'go')], { workspace: 'worktree' })
  return { ...plan, tasks: plan.tasks.map((t) => ({ ...t, ...extra })) } as Plan
}

// Generous: each test starts real CLIs on a shared 2-core machine.
describe.skipIf(!hasRealCli('codex'))('codex (real CLI)', { timeout: 120_000 }, () => {
  it('calls troupe’s MCP tools from the attempt’s CODEX_HOME: claim_files, scratchpad_append read back by a later task', async () => {
    const s = await server([
      { calls: [troupe('claim_files', { paths: ['src/api.ts'] }), troupe('scratchpad_append', { text: 'api lives in src/api.ts' })] },
      { text: 'claimed and noted' },
    ])
    const r = await server([{ calls: [troupe('scratchpad_read', {})] }, { text: 'read' }])
    const plan = cliPlan('codex', 'mcp', [
      task(s, 'writer', 'claim src/api.ts'),
      task(r, 'reader', 'read the pad', { dependsOn: ['writer'] }),
    ])
    const result = await runtime.run(plan, { baseDir: plainDir() }).result
    expect(result.tasks.reader?.state).toBe('COMPLETED')
    expect(offeredTools(s.turns[0]!)).toEqual(
      expect.arrayContaining([
        { name: 'claim_files', namespace: 'mcp__troupe' },
        { name: 'scratchpad_append', namespace: 'mcp__troupe' },
      ]),
    )
    expect(outputs(s.turns[1])).toContain('"granted":true')
    expect(outputs(r.turns[1])).toContain('api lives in src/api.ts')
  })

  it('the MCP URL is in no process’s argv; config.toml holding it is 0600 in a 0700 CODEX_HOME, and gone after the attempt', async () => {
    let argv: string[] = []
    const s = await server((request, turn) => {
      if (turn === 0) {
        argv = descendantCmdlines()
        return {
          calls: [
            shell(
              'stat -c "%a %n" "$CODEX_HOME" "$CODEX_HOME/config.toml"; ' +
                'grep -o "http://127.0.0.1:[0-9]*/mcp/[A-Za-z0-9_-]*" "$CODEX_HOME/config.toml"',
            ),
          ],
        }
      }
      return { text: 'looked' }
    })
    const result = await runtime.run(cliPlan('codex', 'argv', [task(s, 't', 'look around')]), { baseDir: plainDir() }).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(argv.filter((line) => line.includes('exec --json')).length).toBeGreaterThan(0)
    expect(argv.filter((line) => line.includes('/mcp/'))).toEqual([])
    const output = outputs(s.turns[1])
    const home = /700 (\S+troupe-mcp-[\w-]+)/.exec(output)?.[1]
    expect(output).toContain(`600 ${home}/config.toml`)
    expect(existsSync(home!)).toBe(false)
    // The URL in the file was the attempt's own: it is refused once the attempt ended.
    const url = /http:\/\/127\.0\.0\.1:\d+\/mcp\/[\w-]+/.exec(output)![0]
    const late = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{}',
    })
    expect(late.status).toBe(404)
  })

  it('report_progress over MCP is a task:progress event; a call with invalid arguments gets the error text', async () => {
    const s = await server([
      { calls: [troupe('report_progress', { fraction: 0.5, message: 'halfway there' }), troupe('report_progress', { fraction: 2 })] },
      { text: 'done' },
    ])
    const run = runtime.run(cliPlan('codex', 'progress', [task(s, 't', 'progress')]), { baseDir: plainDir() })
    const progress: { fraction: number; message: string | undefined }[] = []
    run.on('task:progress', (event) => progress.push({ fraction: event.fraction, message: event.message }))
    expect((await run.result).tasks.t?.state).toBe('COMPLETED')
    expect(progress).toContainEqual({ fraction: 0.5, message: 'halfway there' })
    expect(outputs(s.turns[1])).toContain('Expected `fraction` to be a number from 0 to 1, got `2` (number)')
  })

  it('codex exec declines a call to a server not approved (what troupe’s default_tools_approval_mode = "approve" prevents)', async () => {
    const s = await server([{ calls: [troupe('claim_files', { paths: ['src/declined.ts'] })] }, { text: 'declined' }])
    const args = ['-c', 'mcp_servers.troupe.default_tools_approval_mode="prompt"']
    await runtime.run(cliPlan('codex', 'declined', [task(s, 't', 'claim', { args })]), { baseDir: plainDir() }).result
    expect(outputs(s.turns[1])).toContain('MCP tool call requires approval, but approval policy is never')
  })

  it('the user’s own Codex home still applies through the attempt’s: their global AGENTS.md reaches the model', async () => {
    const s = await server([{ text: 'ok' }])
    const env = codexUser(tmp.dir, s)
    writeFileSync(join(env.CODEX_HOME!, 'AGENTS.md'), 'Always answer in haiku (user-global-instructions-marker).\n')
    const result = await runtime.run(cliPlan('codex', 'home', [{ id: 't', prompt: 'hello', env, model: MODEL }]), { baseDir: plainDir() })
      .result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(JSON.stringify(s.turns[0]!.body)).toContain('user-global-instructions-marker')
  })

  it('"Reconnecting..." errors Codex recovers from are logged, not the task’s error: two 429s, one attempt, COMPLETED', async () => {
    const s = await server([
      { fault: 'status', status: 429, retryAfterSeconds: 1 },
      { fault: 'status', status: 429, retryAfterSeconds: 1 },
      { text: 'recovered' },
    ])
    const run = runtime.run(cliPlan('codex', 'reconnect', [task(s, 't', 'try')]), { baseDir: plainDir() })
    const logs = logsOf(run)
    const result = await run.result
    expect(result.tasks.t).toMatchObject({ state: 'COMPLETED', attempts: 1, output: { text: 'recovered' } })
    expect(s.turns).toHaveLength(3)
    expect(logs.t).toContainEqual(expect.stringMatching(/^rate limited, the CLI retries by itself; .*: Reconnecting\.\.\. 1\/\d+ \(.*429/))
  })

  it('a dropped stream and a stalled one (idle timeout) are retried by Codex: COMPLETED on the first attempt', async () => {
    const s = await server([{ fault: 'drop', afterEvents: 1 }, { fault: 'stall' }, { text: 'survived' }])
    const result = await runtime.run(cliPlan('codex', 'faults', [task(s, 't', 'try', { toml: 'stream_idle_timeout_ms = 1500' })]), {
      baseDir: plainDir(),
    }).result
    expect(result.tasks.t).toMatchObject({ state: 'COMPLETED', attempts: 1, output: { text: 'survived' } })
    expect(s.turns).toHaveLength(3)
  })

  it('only a final failure counts: 429s past Codex’s own retries end in turn.failed, which is ERR_RATE_LIMITED', async () => {
    const s = await server(() => ({ fault: 'status', status: 429, retryAfterSeconds: 0 }))
    const own = createRuntime({
      config: {
        pool: { minThreads: 0, maxThreads: 1 },
        governor: { enabled: false },
        checkpoint: { enabled: false },
        retry: { rateLimitRetries: 0 },
      },
    })
    try {
      const plan = cliPlan('codex', 'limit', [task(s, 't', 'try', { toml: 'request_max_retries = 1\nstream_max_retries = 1' })])
      const result = await own.run(plan, { baseDir: plainDir() }).result
      expect(result.tasks.t?.error).toMatchObject({
        code: 'ERR_RATE_LIMITED',
        message: expect.stringContaining('exceeded retry limit, last status: 429 Too Many Requests'),
      })
      expect(result.tasks.t?.error?.message).not.toContain('WARNING')
    } finally {
      await own.close({ force: true })
    }
  })

  it('runs outside a git repository (--skip-git-repo-check)', async () => {
    const s = await server([{ text: 'fine here' }])
    const result = await runtime.run(cliPlan('codex', 'nogit', [task(s, 't', 'hello')]), { baseDir: plainDir() }).result
    expect(result.tasks.t?.output).toMatchObject({ text: 'fine here' })
  })

  it('permissions: edit (workspace-write sandbox) lets its shell write in the workspace', async () => {
    const s = await server([{ calls: [shell('echo from-shell > shell.txt')] }, { text: 'ran' }])
    const dir = plainDir()
    const result = await runtime.run(cliPlan('codex', 'edit', [task(s, 't', 'write', { permissions: 'edit' })]), { baseDir: dir }).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(readFileSync(join(dir, 'shell.txt'), 'utf8')).toBe('from-shell\n')
  })

  // Known gap (found at integration, reproducible on this branch too): Codex 0.171 `exec --json`
  // streams no command_execution item for an `exec_command` (unified exec) call, so a write the
  // read-only sandbox refused is invisible to troupe and the task COMPLETES. The sandbox itself
  // holds (the file is not written). Skipped until troupe reads the refusal from another source.
  it.skip('permissions: read-only (read-only sandbox, default outside a worktree): its shell cannot write: ERR_PERMISSION_DENIED', async () => {
    const s = await server([{ calls: [shell('echo no > shell.txt')] }, { text: 'tried' }])
    const dir = plainDir()
    const result = await runtime.run(cliPlan('codex', 'ro', [task(s, 't', 'write')]), { baseDir: dir }).result
    expect(existsSync(join(dir, 'shell.txt'))).toBe(false)
    expect(outputs(s.turns[1])).toContain('Read-only file system')
    expect(result.tasks.t?.error).toMatchObject({
      code: 'ERR_PERMISSION_DENIED',
      message: expect.stringContaining('Read-only file system'),
    })
  })

  it('the prompt goes on stdin: one starting with "-" and one over 128 KiB reach the model as written', async () => {
    const s = await server([{ text: 'ok' }, { text: 'ok' }])
    const big = `- item\n${'x'.repeat(200 * 1024)}`
    const result = await runtime.run(
      cliPlan('codex', 'stdin', [task(s, 'dash', '-v --version'), task(s, 'big', big, { dependsOn: ['dash'] })]),
      { baseDir: plainDir() },
    ).result
    expect(result.tasks.big?.state).toBe('COMPLETED')
    const texts = s.turns.map((turn) => JSON.stringify(inputItems(turn)))
    expect(texts[0]).toContain('-v --version')
    expect(texts[1]).toContain('x'.repeat(200 * 1024))
  })

  it('prices turn.completed usage with config.models, cached input at its own price; turns and apiCalls agree', async () => {
    const s = await server([
      { calls: [shell('true'), shell('true')], usage: { input: 1000, cached: 500, output: 100 } },
      { text: 'halfway', calls: [shell('true')], usage: { input: 2000, output: 300 } },
      { text: 'done', usage: { input: 1000, output: 100 } },
    ])
    const result = await runtime.run(cliPlan('codex', 'usage', [task(s, 't', 'count')]), { baseDir: plainDir() }).result
    // 3500 uncached input × $2/M + 500 cached × $1/M + 500 output × $8/M
    expect(result.tasks.t?.output).toMatchObject({ usage: { inputTokens: 4000, outputTokens: 500, costUsd: 0.0115 } })
    // Codex names no model call in its stream: troupe infers them from the items it streams, and
    // Codex 0.171 streams exec_command items irregularly (3 calls here counted 3 or 4 in CI), so
    // only the agreement of the two counts is exact.
    const turns = (result.tasks.t?.output as { turns: number }).turns
    expect(turns).toBeGreaterThanOrEqual(1)
    expect(result.usage?.byModel[MODEL]?.apiCalls).toBe(turns)
    expect(result.usage?.byModel[MODEL]?.costUsd).toBeCloseTo(0.0115)
  })

  it('a completed session whose final totals cross the budget keeps its output (regression: CANCELLED, output discarded)', async () => {
    const s = await server([
      { calls: [shell('true')], usage: { input: 1000, output: 100 } },
      { text: 'done', usage: { input: 1000, output: 100 } },
    ])
    const own = pricedRuntime({ budget: { maxCostUsd: 0.001, onExceeded: 'fail' } })
    try {
      const plan = cliPlan('codex', 'cross', [task(s, 't', 'go'), task(s, 'next', 'go', { dependsOn: ['t'] })])
      const result = await own.run(plan, { baseDir: plainDir() }).result
      // Codex streams no spend per call (those are counted at $0); its turn.completed totals:
      // 2000 input × $2/M + 200 output × $8/M = $0.0056, over the $0.001 budget.
      expect(result.usage?.total.costUsd).toBeCloseTo(0.0056, 6)
      expect(result.tasks.t?.state).toBe('COMPLETED')
      expect(result.tasks.t?.output).toMatchObject({ text: 'done' })
      // The crossing stops the rest of the run.
      expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
      expect(result.tasks.next).toMatchObject({ state: 'CANCELLED', attempts: 0 })
      expect(s.turns).toHaveLength(2)
    } finally {
      await own.close({ force: true })
    }
  })

  it('a worktree task whose check fails still counts its session’s tokens (regression: lost with the replaced result)', async () => {
    const s = await server([{ text: 'done', usage: { input: 1000, output: 100 } }])
    const own = pricedRuntime()
    try {
      const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
      const result = await own.run(worktreeTask(s, { check: 'echo broken; exit 1' }), { baseDir: repo }).result
      expect(result.tasks.t?.error?.code).toBe('ERR_CHECK_FAILED')
      // 1000 input × $2/M + 100 output × $8/M
      expect(result.usage?.total.costUsd).toBeCloseTo(0.0028, 6)
    } finally {
      await own.close({ force: true })
    }
  })

  it('a session whose check failed counts its tokens before a repair is decided: a budget they cross starts no repair', async () => {
    const s = await server(() => ({ text: 'done', usage: { input: 1000, output: 100 } }))
    const own = pricedRuntime({ budget: { maxCostUsd: 0.001, onExceeded: 'fail' } })
    try {
      const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
      const plan = worktreeTask(s, { check: 'echo broken; exit 1', repair: { attempts: 2, on: ['check'] } })
      const result = await own.run(plan, { baseDir: repo }).result
      // The first session's $0.0028 stopped the run before a repair could start.
      expect(s.turns).toHaveLength(1)
      expect(result.usage?.total.costUsd).toBeCloseTo(0.0028, 6)
      expect(result.tasks.t).toMatchObject({ state: 'CANCELLED', error: { code: 'ERR_BUDGET_EXCEEDED' } })
      expect(result.tasks.t?.repairs).toBeUndefined()
    } finally {
      await own.close({ force: true })
    }
  })

  it('a cancelled attempt leaves no troupe-mcp dir', async () => {
    const s = await server([{ fault: 'stall' }])
    const run = runtime.run(cliPlan('codex', 'cancel', [task(s, 't', 'wait')]), { baseDir: plainDir() })
    await until(() => s.turns.length > 0)
    await run.cancel('test done')
    expect((await run.result).tasks.t?.state).toBe('CANCELLED')
    expect(tmp.mcpDirs()).toEqual([])
  })

  it.each([1, 2])(
    'troupe stopped mid-attempt by %i SIGTERM(s) (one: graceful; two: forced exit) leaves no troupe-mcp dir',
    async (signals) => {
      const s = await server([{ fault: 'stall' }])
      const dir = mkdtempSync(join(tmp.dir, 'killed-'))
      const childTmp = mkdtempSync(join(tmp.dir, 'tmp-'))
      writeFileSync(join(dir, 'plan.yaml'), JSON.stringify(cliPlan('codex', 'killed', [task(s, 't', 'wait')])))
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI_ENTRY, 'run', join(dir, 'plan.yaml')], {
        cwd: dir,
        env: { ...process.env, TMPDIR: childTmp, NO_COLOR: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let stderr = ''
      child.stderr!.on('data', (chunk) => (stderr += chunk))
      let ended = false
      const exited = new Promise((resolve) => child.on('close', () => resolve((ended = true))))
      await until(() => s.turns.length > 0 || ended)
      expect(ended, stderr).toBe(false)
      expect(readdirSync(childTmp).filter((name) => name.startsWith('troupe-mcp-'))).toHaveLength(1)
      for (let i = 0; i < signals; i++) {
        child.kill('SIGTERM')
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await exited
      expect(readdirSync(childTmp).filter((name) => name.startsWith('troupe-mcp-'))).toEqual([])
    },
    120_000,
  )

  it('acceptance: a 429 storm the CLI retries alone pauses the limit at once; none starts on it meanwhile, re-runs or FAILS', async () => {
    await expectRateLimitStormPauses(KIND, server, task, (text) => ({ text }))
  }, 180_000)

  it('acceptance: a worktree task edits with its shell, claims and notes over MCP, is merged; a rival claim names the holder', async () => {
    let refusedSeen: () => void = () => {}
    const refused = new Promise<void>((resolve) => (refusedSeen = resolve))
    const holder = await server(async (request, turn) => {
      if (turn === 0) return { calls: [troupe('claim_files', { paths: ['src/shared.ts'] })] }
      if (turn === 1) {
        await refused
        return {
          calls: [
            shell('mkdir -p src && printf "export const shared = 1\\n" > src/shared.ts'),
            troupe('scratchpad_append', { text: 'shared.ts written' }),
          ],
        }
      }
      return { text: 'written' }
    })
    const asker = await server(async (request, turn) => {
      if (turn === 0) {
        await until(() => holder.turns.length > 1)
        return { calls: [troupe('claim_files', { paths: ['src/shared.ts'] })] }
      }
      refusedSeen()
      return { text: 'refused' }
    })
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const plan = cliPlan('codex', 'accept', [task(holder, 'holder', 'write src/shared.ts'), task(asker, 'asker', 'claim src/shared.ts')], {
      workspace: 'worktree',
    })
    const own = createRuntime({
      config: {
        maxParallel: 2,
        pool: { minThreads: 0, maxThreads: 1 },
        governor: { enabled: false },
        checkpoint: { dir: join(repo, '.troupe') },
      },
    })
    try {
      const result = await own.run(plan, { runId: 'c1', baseDir: repo }).result
      expect(result.tasks.holder).toMatchObject({ state: 'COMPLETED', workspace: { merge: 'merged' } })
      expect(outputs(asker.turns[1])).toMatch(/"granted":false.*"holder":"holder"/)
      expect(outputs(holder.turns[2])).not.toMatch(/error/i)
      expect(gitIn(repo, 'show', 'troupe/c1/integration:src/shared.ts')).toBe('export const shared = 1')
    } finally {
      await own.close({ force: true })
    }
  }, 120_000)

  it('argv: exec --json --skip-git-repo-check, the sandbox per permissions, the prompt as "-" (stdin) and no MCP URL', () => {
    expect(codex.argv('m', ['--x'], 'edit')).toEqual([
      'exec',
      '--json',
      '--skip-git-repo-check',
      '-s',
      'workspace-write',
      '-m',
      'm',
      '--x',
      '-',
    ])
    expect(codex.permissionArgs('read-only')).toEqual(['-s', 'read-only'])
    expect(codex.permissionArgs('full')).toEqual(['-s', 'danger-full-access'])
  })

  it('stderrNoise: Codex’s stdin notice and PATH-alias warning are chatter; its errors are not', () => {
    expect(codex.stderrNoise!.test('Reading additional input from stdin...')).toBe(true)
    expect(
      codex.stderrNoise!.test('WARNING: proceeding, even though we could not create PATH aliases: Refusing to create helper binaries'),
    ).toBe(true)
    expect(codex.stderrNoise!.test('Error loading config.toml: invalid type')).toBe(false)
  })
})
