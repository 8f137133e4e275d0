import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import type { TroupeConfig } from '../../../../src/runtime/core/config.ts'
import { gitIn, tempRepo } from '../../../helpers/git-repo.ts'
import type { Script } from '../../../helpers/model-servers/anthropic.ts'
import { realClaudeSuite, type RealClaudeSession } from '../../../helpers/real-claude.ts'
import { hasRealCli } from '../../../helpers/real-clis.ts'

// The REAL `claude` executable (scripts/install-clis.sh), pointed at a scripted Messages API
// (ANTHROPIC_BASE_URL), with a throwaway HOME / CLAUDE_CONFIG_DIR so nothing of the machine's is read.
const { claude, root, start } = realClaudeSuite('troupe-claude-real-')

async function setUp(script: Script, config: TroupeConfig = {}): Promise<RealClaudeSession> {
  const base: TroupeConfig = { maxParallel: 4, pool: { minThreads: 0, maxThreads: 1 }, cancelGraceMs: 500 }
  Object.assign(base, { governor: { enabled: false }, checkpoint: { enabled: false } })
  return start(script, { ...base, ...config })
}

const agent = (env: Record<string, string>, extra: Record<string, unknown> = {}) => ({ kind: 'claude-code', bin: claude, env, ...extra })

/** A first turn calling one tool, then `text`. */
const toolThen =
  (name: string, input: Record<string, unknown>, text: string, tokens: { inputTokens?: number; outputTokens?: number } = {}): Script =>
  ({ turn }) =>
    turn === 0 ? { toolUses: [{ name, input }], ...tokens } : { text, ...tokens }

/** A plan of one task `t` (or `id`) of agent `a`. */
const single = (name: string, agentEntry: Record<string, unknown>, prompt: string, task: Record<string, unknown> = {}): Plan =>
  ({ name, agents: { a: agentEntry }, tasks: [{ id: 't', agent: 'a', retries: 0, input: { prompt }, ...task }] }) as Plan

describe.runIf(hasRealCli('claude-code'))('claude-code agents (the real claude CLI, scripted Messages API)', () => {
  it('a prompt starting with "-" reaches the model as the prompt (not read as options: `-v` once printed the version)', async () => {
    const { runtime, server, env } = await setUp(({ session }) => ({ text: `echo: ${session}` }))
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = single('dash', agent(env, { cwd }), '-v - first item\n- second item')
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect((result.tasks.t?.output as { text: string }).text).toBe('echo: -v - first item\n- second item')
    expect(server.mainRequests()).toHaveLength(1)
  }, 60_000)

  it('a prompt over 128 KiB works (it once failed with spawn E2BIG as an argv element)', async () => {
    const { runtime, server, env } = await setUp(({ session }) => ({ text: `length ${session.length}` }))
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const prompt = `summarise: ${'lorem ipsum '.repeat(200 * 1024 / 12)}`.trim()
    const plan = single('big', agent(env, { cwd }), prompt)
    const result = await runtime.run(plan).result
    expect(prompt.length).toBeGreaterThan(128 * 1024)
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(server.mainRequests()[0]?.session).toBe(prompt)
  }, 60_000)

  it('a task whose Write was refused fails ERR_PERMISSION_DENIED naming the refused call (it was COMPLETED)', async () => {
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const { runtime, env } = await setUp(toolThen('Write', { file_path: join(cwd, 'notes.md'), content: 'x\n' }, 'could not write'))
    const plan = single('ro', agent(env, { cwd, permissions: 'read-only' }), 'write notes')
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.state).toBe('FAILED')
    expect(result.tasks.t?.error?.code).toBe('ERR_PERMISSION_DENIED')
    expect(result.tasks.t?.error?.message).toContain(`Write ${join(cwd, 'notes.md')}`)
    expect(result.tasks.t?.error?.message).toContain('permissions: read-only')
  }, 60_000)

  it('permissions: edit lets Claude\'s own Write tool edit a file in its working directory', async () => {
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const { runtime, env } = await setUp(toolThen('Write', { file_path: join(cwd, 'notes.md'), content: 'written\n' }, 'wrote it'))
    const plan = single('ed', agent(env, { cwd, permissions: 'edit' }), 'write notes')
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(readFileSync(join(cwd, 'notes.md'), 'utf8')).toBe('written\n')
  }, 60_000)

  it('a 429 storm: limit:paused within 1 s of the first retry, a task on the limit waits it out, nothing fails, no re-run', async () => {
    const { runtime, server, env } = await setUp(
      ({ session, attempt }) => (session === 'storm' && attempt < 3 ? { status: 429, retryAfterS: 2 } : { text: `ok ${session}` }),
      { limits: { anthropic: { maxConcurrent: 4 } } },
    )
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = (id: string) => single(id, agent(env, { cwd }), id, { id, uses: ['anthropic'] })
    const first = runtime.run(plan('storm'))
    const logs: string[] = []
    first.on('task:log', (e) => logs.push(e.message))
    const paused = new Promise<{ at: number; until: number; limits: readonly string[] }>((resolve) => first.on('limit:paused', resolve))
    const pause = await paused
    const first429 = server.requests.find((r) => r.reply === '429')!
    expect(pause.limits).toEqual(['anthropic'])
    expect(pause.at - first429.at).toBeLessThan(1000)
    // Another task on the same limit, submitted during the pause, starts only after it.
    const second = runtime.run(plan('later'))
    const [a, b] = await Promise.all([first.result, second.result])
    expect(a.tasks.storm?.state).toBe('COMPLETED')
    expect(b.tasks.later?.state).toBe('COMPLETED')
    const laterFirst = server.mainRequests('later')[0]!
    const lastPause = Math.max(...server.requests.filter((r) => r.reply === '429').map((r) => r.at))
    expect(laterFirst.at).toBeGreaterThanOrEqual(pause.until - 50)
    expect(laterFirst.at).toBeGreaterThan(lastPause)
    // One session: 3 refused calls and the one that worked, one attempt.
    expect(server.mainRequests('storm').map((r) => r.reply)).toEqual(['429', '429', '429', 'stream'])
    expect(a.tasks.storm?.attempts).toBe(1)
    expect(logs.filter((l) => l.startsWith('rate limited, the CLI retries by itself'))).toHaveLength(3)
  }, 120_000)

  it('a dropped stream: Claude retries the call by itself, the task completes, the session is not re-run', async () => {
    const { runtime, server, env } = await setUp(({ attempt }) => (attempt === 0 ? { drop: true } : { text: 'recovered' }))
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = single('drop', agent(env, { cwd }), 'drop')
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect((result.tasks.t?.output as { text: string }).text).toBe('recovered')
    expect(result.tasks.t?.attempts).toBe(1)
    expect(server.mainRequests('drop').map((r) => r.reply)).toEqual(['drop', 'stream'])
  }, 60_000)

  it('a session that ends on 429 (the CLI gave up retrying) fails ERR_RATE_LIMITED', async () => {
    const { runtime, env } = await setUp(() => ({ status: 429, retryAfterS: 0 }), { retry: { rateLimitRetries: 0 } })
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = single('gave-up', agent({ ...env, CLAUDE_CODE_MAX_RETRIES: '1' }, { cwd }), 'hi')
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.error?.code).toBe('ERR_RATE_LIMITED')
    expect(result.tasks.t?.error?.message).toContain('API status 429')
  }, 60_000)

  // Acceptance (#20): a worktree task claims a file and edits it with Claude's Write tool, notes on the scratchpad over MCP, the
  // edit is merged; a second task claiming the same file is refused naming the holder.
  it('acceptance: worktree edit through Write, claim + scratchpad over MCP, merged; a second claim refused naming the holder', async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
    let grantedA: () => void = () => {}
    const aHolds = new Promise<void>((resolve) => (grantedA = resolve))
    let refusedB: (text: string) => void = () => {}
    const bRefused = new Promise<string>((resolve) => (refusedB = resolve))
    // A tool result's content: a string, or text blocks.
    const blockText = (content: unknown) =>
      typeof content === 'string' ? content : (content as { text?: string }[]).map((b) => b.text ?? '').join('')
    const text = (results: readonly { content: unknown }[]) => results.map((r) => blockText(r.content)).join('\n')
    let argvCheck: { urlInArgv: boolean; fileMode: number; dirMode: number } | undefined
    const script: Script = async ({ session, turn, toolResults }) => {
      const [who, workspace] = session.split(' ')
      if (who === 'A') {
        if (turn === 0) return { toolUses: [{ name: 'mcp__troupe__claim_files', input: { paths: ['shared.txt'] } }] }
        if (turn === 1) {
          expect(text(toolResults)).toContain('granted')
          grantedA()
          return { toolUses: [{ name: 'Write', input: { file_path: join(workspace!, 'shared.txt'), content: 'from A\n' } }] }
        }
        if (turn === 2) return { toolUses: [{ name: 'mcp__troupe__scratchpad_append', input: { text: 'A wrote shared.txt' } }] }
        await bRefused
        return { text: 'done A' }
      }
      if (turn === 0) {
        await aHolds
        argvCheck = inspectMcpHandOver()
        return { toolUses: [{ name: 'mcp__troupe__claim_files', input: { paths: ['shared.txt'] } }] }
      }
      refusedB(text(toolResults))
      return { text: 'B was refused' }
    }
    const { runtime, env } = await setUp(script, { checkpoint: { dir: join(repo, '.troupe') } })
    const plan = {
      name: 'team',
      workspace: 'worktree',
      agents: { coder: agent(env) },
      tasks: [
        { id: 'A', agent: 'coder', retries: 0, input: { prompt: 'A {{workspace}}' } },
        { id: 'B', agent: 'coder', retries: 0, input: { prompt: 'B {{workspace}}' } },
      ],
    } as Plan
    const run = runtime.run(plan, { runId: 'acc', baseDir: repo })
    const notes: string[] = []
    run.on('scratchpad:note', (e) => notes.push(`${e.taskId}: ${e.text}`))
    const result = await run.result
    expect(result.tasks.A?.state).toBe('COMPLETED')
    expect(result.tasks.B?.state).toBe('COMPLETED')
    expect(JSON.parse(await bRefused)).toEqual({ granted: false, path: 'shared.txt', holder: 'A' })
    expect(result.tasks.A?.workspace?.merge).toBe('merged')
    expect(gitIn(repo, 'show', 'troupe/acc/integration:shared.txt')).toBe('from A')
    expect(notes).toEqual(['A: A wrote shared.txt'])
    // The MCP URL (the attempt's credential) is in a 0600 file of a 0700 dir, never in argv.
    expect(argvCheck).toEqual({ urlInArgv: false, fileMode: 0o600, dirMode: 0o700 })
  }, 120_000)

  it('a $0.01 budget, 4 parallel sessions of ~$0.006: spend never over the budget by more than one model call, outputs kept', async () => {
    const { runtime, server, env } = await setUp(toolThen('Glob', { pattern: '*.md' }, 'done', { inputTokens: 1000 }), {
      budget: { maxCostUsd: 0.01, onExceeded: 'fail' },
      models: { coder: { model: 'claude-scripted', inputUsdPerMTok: 3, outputUsdPerMTok: 15 } },
    })
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const tasks = ['s1', 's2', 's3', 's4'].map((id) => ({ id, agent: 'coder', retries: 0, input: { prompt: id } }))
    const run = runtime.run({ name: 'budget', agents: { coder: agent(env, { cwd, model: 'claude-scripted' }) }, tasks } as Plan)
    const result = await run.result
    // One call: 1000 input tokens at $3/M and a few output tokens at $15/M, ~$0.0033 as Claude prices it.
    const oneCall = 0.0035
    expect(result.usage?.total.costUsd).toBeLessThanOrEqual(0.01 + oneCall)
    const completed = Object.values(result.tasks).filter((t) => t.state === 'COMPLETED')
    expect(completed.length).toBeGreaterThanOrEqual(1)
    for (const task of completed) expect((task.output as { text: string }).text).toBe('done')
    expect(result.error?.code).toBe('ERR_BUDGET_EXCEEDED')
    // Model calls made = sessions started × 2: nobody started blind beside the first.
    expect(server.mainRequests().length).toBeLessThanOrEqual(4)
    expect(result.usage?.total.apiCalls).toBe(server.mainRequests().length)
    expect(Object.keys(result.usage?.byModel ?? {})).toEqual(['claude-scripted'])
  }, 120_000)

  it('a completed session whose final totals cross the budget keeps its output (regression: CANCELLED, output discarded)', async () => {
    const { runtime, env } = await setUp(toolThen('Glob', { pattern: '*.md' }, 'done', { inputTokens: 1000, outputTokens: 400 }), {
      budget: { maxCostUsd: 0.0065, onExceeded: 'fail' },
      models: { coder: { model: 'claude-scripted', inputUsdPerMTok: 3, outputUsdPerMTok: 15 } },
    })
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = single('cross', agent(env, { cwd, model: 'claude-scripted' }), 'go')
    const result = await runtime.run(plan).result
    // Streamed: 2 × (1000 × $3/M + 1 × $15/M) ≈ $0.00603 < $0.0065; Claude's totals add the 800 output tokens: ≈ $0.018.
    expect(result.usage?.total.costUsd).toBeGreaterThan(0.0065)
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect((result.tasks.t?.output as { text: string }).text).toBe('done')
  }, 60_000)

  it('a session killed by its timeout still counts the model calls it made', async () => {
    const stallAfterOne: Script = ({ turn }) =>
      turn === 0 ? { toolUses: [{ name: 'Glob', input: { pattern: '*' } }], inputTokens: 1000 } : { stall: true }
    const { runtime, env } = await setUp(stallAfterOne, {
      models: { coder: { model: 'claude-scripted', inputUsdPerMTok: 3, outputUsdPerMTok: 15 } },
    })
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = single('slow', agent(env, { cwd, model: 'claude-scripted' }), 'slow', { timeoutMs: 8_000 })
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.error?.code).toBe('ERR_TASK_TIMEOUT')
    expect(result.usage?.total.apiCalls).toBe(1)
    expect(result.usage?.total.costUsd).toBeCloseTo((1000 * 3 + 1 * 15) / 1e6, 6)
  }, 60_000)
})

/** Finds the running claude processes' `--mcp-config` file: whether any process's argv holds its URL, and the file's and dir's modes. */
function inspectMcpHandOver(): { urlInArgv: boolean; fileMode: number; dirMode: number } {
  const cmdlines: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      cmdlines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
    } catch {
      // gone
    }
  }
  const isOurs = (argv: string[]) => argv.includes('--mcp-config') && argv.some((a) => a.endsWith('claude-mcp.json'))
  const ours = cmdlines.map((c) => c.split('\0')).find(isOurs)
  if (ours === undefined) throw new Error('no claude process with --mcp-config found')
  const file = ours[ours.indexOf('--mcp-config') + 1]!
  const url = (JSON.parse(readFileSync(file, 'utf8')) as { mcpServers: { troupe: { url: string } } }).mcpServers.troupe.url
  const mode = (path: string) => statSync(path).mode & 0o777
  return { urlInArgv: cmdlines.some((c) => c.includes(url)), fileMode: mode(file), dirMode: mode(dirname(file)) }
}

