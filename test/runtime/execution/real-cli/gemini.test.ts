import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gemini } from '../../../../src/runtime/execution/processes/gemini.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import { gitIn, tempRepo } from '../../../helpers/git-repo.ts'
import {
  declaredFunctions,
  functionResponses,
  requestParts,
  startGeminiServer,
  type GeminiReply,
  type GeminiServer,
} from '../../../helpers/model-servers/gemini.ts'
import type { Fault, RecordedRequest } from '../../../helpers/model-servers/scripted-server.ts'
import { hasRealCli } from '../../../helpers/real-clis.ts'
import { cliPlan, descendantCmdlines, geminiUser, logsOf, privateTmp, expectRateLimitStormPauses, type CliTask, until } from './harness.ts'

// The real Gemini CLI (test/helpers/real-clis.ts) against a scripted Gemini API server.
const MODEL = 'gemini-2.5-pro'
const KIND = 'gemini'
let tmp: ReturnType<typeof privateTmp>
let runtime: Runtime
const servers: GeminiServer[] = []

beforeAll(() => {
  tmp = privateTmp()
  runtime = createRuntime({
    config: {
      maxParallel: 4,
      pool: { minThreads: 0, maxThreads: 1 },
      cancelGraceMs: 500,
      governor: { enabled: false },
      checkpoint: { enabled: false },
      models: {
        [MODEL]: { model: MODEL, inputUsdPerMTok: 1, outputUsdPerMTok: 4 },
        'gemini-scripted': { model: 'gemini-scripted', inputUsdPerMTok: 2, outputUsdPerMTok: 8 },
      },
    },
  })
})

afterAll(async () => {
  await runtime?.close({ force: true })
  await Promise.all(servers.map((server) => server.close()))
  tmp?.cleanup()
})

type GeminiScript =
  | readonly (GeminiReply | Fault)[]
  | ((request: RecordedRequest, turn: number) => GeminiReply | Fault | Promise<GeminiReply | Fault>)

async function server(script: GeminiScript): Promise<GeminiServer> {
  const started = await startGeminiServer(script)
  servers.push(started)
  return started
}

const task = (s: GeminiServer, id: string, prompt: string, extra: Partial<CliTask> = {}): CliTask => ({
  id,
  prompt,
  env: geminiUser(tmp.dir, s),
  model: MODEL,
  ...extra,
})
/** The text of a function response as the model gets it. */
const answer = (request: RecordedRequest | undefined, name: string) =>
  JSON.stringify(request === undefined ? undefined : functionResponses(request)[name])
/** Resolves when `fn` is true, checking every 50 ms. */

// Generous: each test starts real CLIs (Gemini takes seconds to start) on a shared 2-core machine.
describe.skipIf(!hasRealCli('gemini'))('gemini (real CLI)', { timeout: 120_000 }, () => {
  it('loads troupe’s MCP server from the attempt’s GEMINI_CLI_HOME: claim_files and scratchpad_append answer over MCP', async () => {
    const s = await server([
      {
        calls: [
          { name: 'mcp_troupe_claim_files', args: { paths: ['src/api.ts'] } },
          { name: 'mcp_troupe_scratchpad_append', args: { text: 'api lives in src/api.ts' } },
        ],
      },
      { text: 'claimed and noted' },
    ])
    const r = await server([{ calls: [{ name: 'mcp_troupe_scratchpad_read', args: {} }] }, { text: 'read' }])
    const result = await runtime.run(
      cliPlan('gemini', 'mcp', [task(s, 'writer', 'claim src/api.ts'), task(r, 'reader', 'read the pad', { dependsOn: ['writer'] })]),
    ).result
    expect(result.tasks.writer?.state).toBe('COMPLETED')
    expect(declaredFunctions(s.turns[0]!)).toEqual(
      expect.arrayContaining(['mcp_troupe_claim_files', 'mcp_troupe_scratchpad_append', 'mcp_troupe_scratchpad_read']),
    )
    expect(answer(s.turns[1], 'mcp_troupe_claim_files')).toContain('\\"granted\\":true')
    expect(answer(r.turns[1], 'mcp_troupe_scratchpad_read')).toContain('api lives in src/api.ts')
  })

  it('the MCP URL is in no process’s argv; the settings file holding it is 0600 in a 0700 home, and gone after the attempt', async () => {
    let argv: string[] = []
    const s = await server((request, turn) => {
      if (turn === 0) {
        argv = descendantCmdlines()
        return {
          calls: [
            { name: 'run_shell_command', args: { command: 'stat -c "%a %n" "$GEMINI_CLI_HOME" "$GEMINI_CLI_HOME/.gemini/settings.json"' } },
          ],
        }
      }
      return { text: 'looked' }
    })
    const result = await runtime.run(cliPlan('gemini', 'argv', [task(s, 't', 'look around', { permissions: 'full' })])).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(argv.filter((line) => line.includes('--output-format stream-json')).length).toBeGreaterThan(0)
    expect(argv.filter((line) => line.includes('/mcp/'))).toEqual([])
    const output = answer(s.turns[1], 'run_shell_command')
    const home = /700 (\S+troupe-mcp-[\w-]+)/.exec(output)?.[1]
    expect(output).toContain(`600 ${home}/.gemini/settings.json`)
    expect(existsSync(home!)).toBe(false)
  })

  it('the user’s own Gemini home still applies through the attempt’s: their global GEMINI.md reaches the model', async () => {
    const s = await server([{ text: 'ok' }])
    const env = geminiUser(tmp.dir, s)
    writeFileSync(join(env.GEMINI_CLI_HOME!, '.gemini', 'GEMINI.md'), 'Always answer in haiku (user-global-memory-marker).\n')
    const result = await runtime.run(cliPlan('gemini', 'home', [{ id: 't', prompt: 'hello', env, model: MODEL }])).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(JSON.stringify(s.turns[0]!.body)).toContain('user-global-memory-marker')
  })

  it('passes --skip-trust: an untrusted directory is not exit 55', async () => {
    const s = await server([{ text: 'trusted enough' }])
    const result = await runtime.run(cliPlan('gemini', 'trust', [task(s, 't', 'hello')])).result
    expect(result.tasks.t?.output).toMatchObject({ text: 'trusted enough' })
  })

  it('permissions: full (yolo) runs the shell; the file is written', async () => {
    const s = await server([{ calls: [{ name: 'run_shell_command', args: { command: 'echo from-shell > shell.txt' } }] }, { text: 'ran' }])
    const dir = tempRepo()
    const result = await runtime.run(cliPlan('gemini', 'full', [task(s, 't', 'run it', { permissions: 'full' })]), { baseDir: dir }).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(readFileSync(join(dir, 'shell.txt'), 'utf8')).toBe('from-shell\n')
  })

  it('permissions: edit (auto_edit) writes files with write_file; the shell is refused: ERR_PERMISSION_DENIED naming it', async () => {
    const s = await server([
      {
        calls: [
          { name: 'write_file', args: { file_path: 'edited.txt', content: 'edited\n' } },
          { name: 'run_shell_command', args: { command: 'echo no > shell.txt' } },
        ],
      },
      { text: 'tried' },
    ])
    const dir = tempRepo()
    const run = runtime.run(cliPlan('gemini', 'edit', [task(s, 't', 'edit it', { permissions: 'edit' })]), { baseDir: dir })
    const logs = logsOf(run)
    const result = await run.result
    expect(readFileSync(join(dir, 'edited.txt'), 'utf8')).toBe('edited\n')
    expect(existsSync(join(dir, 'shell.txt'))).toBe(false)
    expect(logs.t).toContainEqual(expect.stringMatching(/^tool run_shell_command\S* failed: Tool "run_shell_command" not found/))
    expect(result.tasks.t?.error).toMatchObject({
      code: 'ERR_PERMISSION_DENIED',
      message: expect.stringContaining('run_shell_command (tool_not_registered)'),
    })
  })

  it('permissions: read-only (approval mode default; default outside a worktree) offers no write tool: ERR_PERMISSION_DENIED', async () => {
    const s = await server([{ calls: [{ name: 'write_file', args: { file_path: 'nope.txt', content: 'x' } }] }, { text: 'tried' }])
    const dir = tempRepo()
    const result = await runtime.run(cliPlan('gemini', 'ro', [task(s, 't', 'try')]), { baseDir: dir }).result
    expect(result.tasks.t?.error).toMatchObject({
      code: 'ERR_PERMISSION_DENIED',
      message: expect.stringContaining('write_file (tool_not_registered)'),
    })
    expect(declaredFunctions(s.turns[0]!)).not.toContain('write_file')
    expect(declaredFunctions(s.turns[0]!)).toContain('read_file')
    expect(existsSync(join(dir, 'nope.txt'))).toBe(false)
  })

  it('assembles delta messages into whole lines in the task log; output.text is the final answer only', async () => {
    const s = await server([
      { text: 'Let me look.', calls: [{ name: 'read_file', args: { file_path: 'README.md' } }] },
      { text: 'The answer:\nline one of it\nline two of it', chunks: 5 },
    ])
    const run = runtime.run(cliPlan('gemini', 'delta', [task(s, 't', 'answer')]), { baseDir: tempRepo() })
    const logs = logsOf(run)
    const result = await run.result
    expect(result.tasks.t?.output).toMatchObject({ text: 'The answer:\nline one of it\nline two of it', turns: 2 })
    expect(logs.t).toEqual(expect.arrayContaining(['Let me look.', 'The answer:', 'line one of it', 'line two of it']))
  })

  it('the prompt goes on stdin: one starting with "-" and one over 128 KiB both reach the model as written', async () => {
    const s = await server([{ text: 'ok' }, { text: 'ok' }])
    const big = `- item\n${'x'.repeat(200 * 1024)}`
    const result = await runtime.run(
      cliPlan('gemini', 'stdin', [task(s, 'dash', '-v --version'), task(s, 'big', big, { dependsOn: ['dash'] })]),
    ).result
    expect(result.tasks.dash?.state).toBe('COMPLETED')
    expect(result.tasks.big?.state).toBe('COMPLETED')
    const texts = s.turns.map((turn) =>
      requestParts(turn)
        .map((part) => String(part.text ?? ''))
        .join('\n'),
    )
    expect(texts[0]).toContain('-v --version')
    expect(texts[1]).toContain(big)
  })

  it('counts usage per model the API reported, priced per model, and turns as model calls', async () => {
    const s = await server([
      { calls: [{ name: 'read_file', args: { file_path: 'README.md' } }], usage: { input: 1000, output: 100 }, model: 'gemini-scripted' },
      { text: 'done', usage: { input: 2000, output: 200 }, model: 'gemini-scripted' },
    ])
    const result = await runtime.run(cliPlan('gemini', 'usage', [task(s, 't', 'count')]), { baseDir: tempRepo() }).result
    // 3000 input × $2/M + 300 output × $8/M
    expect(result.tasks.t?.output).toMatchObject({ usage: { inputTokens: 3000, outputTokens: 300, costUsd: 0.0084 }, turns: 2 })
    expect(result.usage?.byModel['gemini-scripted']?.costUsd).toBeCloseTo(0.0084)
  })

  it('a completed session whose final totals cross the budget keeps its output, per model (regression: CANCELLED)', async () => {
    const s = await server([
      { calls: [{ name: 'read_file', args: { file_path: 'README.md' } }], usage: { input: 1000, output: 100 }, model: 'gemini-scripted' },
      { text: 'done', usage: { input: 3000, output: 500 }, model: MODEL },
    ])
    const own = createRuntime({
      config: {
        pool: { minThreads: 0, maxThreads: 1 },
        governor: { enabled: false },
        checkpoint: { enabled: false },
        budget: { maxCostUsd: 0.001, onExceeded: 'fail' },
        models: {
          [MODEL]: { model: MODEL, inputUsdPerMTok: 1, outputUsdPerMTok: 4 },
          'gemini-scripted': { model: 'gemini-scripted', inputUsdPerMTok: 2, outputUsdPerMTok: 8 },
        },
      },
    })
    try {
      const plan = cliPlan('gemini', 'cross', [task(s, 't', 'go'), task(s, 'next', 'go', { dependsOn: ['t'] })])
      const result = await own.run(plan, { baseDir: tempRepo() }).result
      // Gemini streams no spend per call (those are counted at $0); its result's stats, per model:
      // gemini-scripted 1000 × $2/M + 100 × $8/M = $0.0028, MODEL 3000 × $1/M + 500 × $4/M = $0.005.
      expect(result.usage?.total.costUsd).toBeGreaterThan(0.001)
      expect(result.tasks.t?.state).toBe('COMPLETED')
      expect(result.tasks.t?.output).toMatchObject({ text: 'done' })
      expect(result.usage?.byModel['gemini-scripted']?.costUsd).toBeCloseTo(0.0028, 6)
      expect(result.usage?.byModel[MODEL]?.costUsd).toBeCloseTo(0.005, 6)
      // The crossing stops the rest of the run.
      expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
      expect(result.tasks.next).toMatchObject({ state: 'CANCELLED', attempts: 0 })
    } finally {
      await own.close({ force: true })
    }
  }, 120_000)

  it('429s Gemini retries by itself never re-run the session: one attempt, COMPLETED, the retry chatter in the log', async () => {
    const s = await server([
      { fault: 'status', status: 429, retryAfterSeconds: 1 },
      { fault: 'status', status: 429, retryAfterSeconds: 1 },
      { text: 'recovered' },
    ])
    const run = runtime.run(cliPlan('gemini', 'storm', [task(s, 't', 'try')]))
    const logs = logsOf(run)
    const result = await run.result
    expect(result.tasks.t).toMatchObject({ state: 'COMPLETED', attempts: 1, output: { text: 'recovered' } })
    expect(s.turns).toHaveLength(3)
    expect(logs.t).toContainEqual(expect.stringMatching(/^Attempt 1 failed/))
  }, 120_000)

  it('a dropped stream fails the task with Gemini’s error, not its stderr chatter or stack traces', async () => {
    const s = await server([{ fault: 'drop', afterEvents: 1 }])
    const run = runtime.run(cliPlan('gemini', 'drop', [task(s, 't', 'try')]))
    const logs = logsOf(run)
    const result = await run.result
    expect(result.tasks.t?.error).toMatchObject({
      code: 'ERR_TASK_FAILED',
      message: 'Agent "t" (gemini) reported an error: [API Error: terminated]',
    })
    expect(logs.t).toContainEqual(expect.stringMatching(/^\s+at /))
  })

  it('a stalled stream ends at the task timeout, and no troupe-mcp dir is left', async () => {
    const s = await server([{ fault: 'stall' }])
    const result = await runtime.run(cliPlan('gemini', 'stall', [task(s, 't', 'wait', { timeoutMs: 8000 })])).result
    expect(result.tasks.t?.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(tmp.mcpDirs()).toEqual([])
  })

  it('a cancelled attempt leaves no troupe-mcp dir', async () => {
    const s = await server([{ fault: 'stall' }])
    const run = runtime.run(cliPlan('gemini', 'cancel', [task(s, 't', 'wait')]))
    await until(() => s.turns.length > 0)
    await run.cancel('test done')
    expect((await run.result).tasks.t?.state).toBe('CANCELLED')
    expect(tmp.mcpDirs()).toEqual([])
  })

  it('acceptance: a 429 storm the CLI retries alone pauses the limit at once; none starts on it meanwhile, re-runs or FAILS', async () => {
    await expectRateLimitStormPauses(KIND, server, task, (text) => ({ text }))
  }, 180_000)

  it('acceptance: a worktree task edits via write_file, claims and notes over MCP, is merged; a rival claim names the holder', async () => {
    let refusedSeen: () => void = () => {}
    const refused = new Promise<void>((resolve) => (refusedSeen = resolve))
    const holder = await server(async (request, turn) => {
      if (turn === 0) return { calls: [{ name: 'mcp_troupe_claim_files', args: { paths: ['src/shared.ts'] } }] }
      if (turn === 1) {
        await refused
        return {
          calls: [
            { name: 'write_file', args: { file_path: 'src/shared.ts', content: 'export const shared = 1\n' } },
            { name: 'mcp_troupe_scratchpad_append', args: { text: 'shared.ts written' } },
          ],
        }
      }
      return { text: 'written' }
    })
    const asker = await server(async (request, turn) => {
      if (turn === 0) {
        await until(() => holder.turns.length > 1)
        return { calls: [{ name: 'mcp_troupe_claim_files', args: { paths: ['src/shared.ts'] } }] }
      }
      refusedSeen()
      return { text: 'refused' }
    })
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    const plan = cliPlan('gemini', 'accept', [task(holder, 'holder', 'write src/shared.ts'), task(asker, 'asker', 'claim src/shared.ts')], {
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
      const result = await own.run(plan, { runId: 'g1', baseDir: repo }).result
      expect(result.tasks.holder).toMatchObject({ state: 'COMPLETED', workspace: { merge: 'merged' } })
      expect(answer(asker.turns[1], 'mcp_troupe_claim_files')).toMatch(/\\"granted\\":false.*\\"holder\\":\\"holder\\"/)
      expect(answer(holder.turns[2], 'mcp_troupe_scratchpad_append')).not.toContain('error')
      expect(gitIn(repo, 'show', 'troupe/g1/integration:src/shared.ts')).toBe('export const shared = 1')
    } finally {
      await own.close({ force: true })
    }
  }, 120_000)

  it('stderrNoise: Gemini’s warnings, retry notices and stack frames are chatter; its errors are not', () => {
    const noise = [
      'Warning: 256-color support not detected. Using a terminal with at least 256-color support is recommended.',
      'YOLO mode is enabled. All tool calls will be automatically approved.',
      'Ripgrep is not available. Falling back to GrepTool.',
      'Attempt 1 failed: Rate limit reached',
      'Suggested retry after 1s.. Retrying after 5393ms...',
      '    at Fetch.onAborted (node:internal/deps/undici/undici:11350:53)',
      '}',
    ]
    expect(noise.filter((line) => !gemini.stderrNoise!.test(line))).toEqual([])
    expect(gemini.stderrNoise!.test('Error when talking to Gemini API Full report available at: /tmp/x.json TypeError: terminated')).toBe(
      false,
    )
  })
})
