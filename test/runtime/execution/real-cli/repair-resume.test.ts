import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { gitIn, tempRepo } from '../../../helpers/git-repo.ts'
import { requestParts, startGeminiServer, type GeminiServer } from '../../../helpers/model-servers/gemini.ts'
import { inputItems, startResponsesServer, type ResponsesServer } from '../../../helpers/model-servers/openai-responses.ts'
import type { RecordedRequest } from '../../../helpers/model-servers/scripted-server.ts'
import { hasRealCli } from '../../../helpers/real-clis.ts'
import { cliPlan, codexUser, geminiUser, privateTmp } from './harness.ts'

// Repairs (docs/workspaces.md "Repair") with the real Codex and Gemini CLIs: the repair resumes the attempt's session.
const tmp = privateTmp()
const servers: (ResponsesServer | GeminiServer)[] = []
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()))
  tmp.cleanup()
})

const VERIFY = 'test -f fixed.txt || { echo "VERIFY-SAYS: fixed.txt is missing"; exit 1; }'

async function runRepaired(kind: 'codex' | 'gemini', env: Record<string, string>, model: string) {
  const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\n' })
  const plan = cliPlan(kind, 'repair', [{ id: 't', prompt: 'write the files', env, model, permissions: 'edit' }], {
    workspace: 'worktree',
    integration: { verify: VERIFY },
  } as never)
  const agents = plan.agents as Record<string, Record<string, unknown>>
  agents.t!.repair = { attempts: 1 }
  const models = { [model]: { model, inputUsdPerMTok: 1, cachedInputUsdPerMTok: 0.5, outputUsdPerMTok: 4 } }
  const checkpoint = { dir: join(repo, '.troupe') }
  const config = { pool: { minThreads: 0, maxThreads: 1 }, governor: { enabled: false }, checkpoint, models }
  const runtime = createRuntime({ config })
  try {
    return { result: await runtime.run(plan, { runId: 'rr', baseDir: repo }).result, repo }
  } finally {
    await runtime.close({ force: true })
  }
}

const shell = (cmd: string) => ({ name: 'exec_command', arguments: { cmd } })

describe.skipIf(!hasRealCli('codex'))('codex repair (real CLI)', { timeout: 120_000 }, () => {
  it('a failing verify is repaired by `codex exec resume <thread>`: the model sees its first turn and the failure', async () => {
    const seen: RecordedRequest[] = []
    const s = await startResponsesServer((request, turn) => {
      seen.push(request)
      if (turn === 0) return { calls: [shell('echo work > work.txt')] }
      if (turn === 1) return { text: 'first done' }
      if (turn === 2) return { calls: [shell('echo fixed > fixed.txt')] }
      return { text: 'fixed' }
    })
    servers.push(s)
    const { result, repo } = await runRepaired('codex', codexUser(tmp.dir, s), 'gpt-5-codex')
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(result.tasks.t?.repairs?.map((r) => r.reason)).toEqual(['verify'])
    const resumed = JSON.stringify(inputItems(seen[2]!))
    expect(resumed).toContain('first done')
    expect(resumed).toContain('VERIFY-SAYS: fixed.txt is missing')
    expect(gitIn(repo, 'show', 'troupe/rr/integration:fixed.txt')).toBe('fixed')
  })
})

describe.skipIf(!hasRealCli('codex'))('codex repair usage (real CLI)', { timeout: 120_000 }, () => {
  it('a Codex repair counts only its own tokens: a resumed thread’s totals hold the earlier run (regression: twice)', async () => {
    const s = await startResponsesServer((_request, turn) => {
      if (turn === 0) return { calls: [shell('echo work > work.txt')], usage: { input: 1000, cached: 400, output: 10 } }
      if (turn === 1) return { text: 'first done', usage: { input: 1000, output: 10 } }
      if (turn === 2) return { calls: [shell('echo fixed > fixed.txt')], usage: { input: 100, output: 1 } }
      return { text: 'fixed', usage: { input: 100, output: 1 } }
    })
    servers.push(s)
    const { result } = await runRepaired('codex', codexUser(tmp.dir, s), 'gpt-5-codex')
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(result.tasks.t?.repairs).toHaveLength(1)
    // Every call once: 2200 input (400 cached) and 22 output tokens; 1800 × $1/M + 400 × $0.5/M + 22 × $4/M.
    expect(result.usage?.total.tokens).toBe(2222)
    expect(result.usage?.total.costUsd).toBeCloseTo(0.002088, 8)
    // The output is the repair session's own.
    expect(result.tasks.t?.output).toMatchObject({ usage: { inputTokens: 200, outputTokens: 2 } })
  })
})

describe.skipIf(!hasRealCli('gemini'))('gemini repair (real CLI)', { timeout: 120_000 }, () => {
  it('a failing verify is repaired by `gemini --resume <session>`: the model sees its first turn and the failure', async () => {
    const write = (file: string, content: string) => ({ calls: [{ name: 'write_file', args: { file_path: file, content } }] })
    const seen: RecordedRequest[] = []
    const s = await startGeminiServer((request, turn) => {
      seen.push(request)
      if (turn === 0) return write('work.txt', 'work\n')
      if (turn === 1) return { text: 'first done' }
      if (turn === 2) return write('fixed.txt', 'fixed\n')
      return { text: 'fixed' }
    })
    servers.push(s)
    const { result, repo } = await runRepaired('gemini', geminiUser(tmp.dir, s), 'gemini-2.5-pro')
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(result.tasks.t?.repairs?.map((r) => r.reason)).toEqual(['verify'])
    const resumed = JSON.stringify(requestParts(seen[2]!))
    expect(resumed).toContain('first done')
    expect(resumed).toContain('VERIFY-SAYS: fixed.txt is missing')
    expect(gitIn(repo, 'show', 'troupe/rr/integration:fixed.txt')).toBe('fixed')
  })
})
