import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import type { TroupeConfig } from '../../../../src/runtime/core/config.ts'
import { gitIn, tempRepo } from '../../../helpers/git-repo.ts'
import { claudeEnv, startAnthropicServer, type AnthropicServer, type Script } from '../../../helpers/model-servers/anthropic.ts'
import { hasRealCli, realCliPath } from '../../../helpers/real-clis.ts'

// The REAL `claude` executable (scripts/install-clis.sh), pointed at a scripted Messages API
// (ANTHROPIC_BASE_URL), with a throwaway HOME / CLAUDE_CONFIG_DIR so nothing of the machine's is read.
const claude = realCliPath('claude-code')
const root = mkdtempSync(join(tmpdir(), 'troupe-claude-real-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let runtime: Runtime | undefined
let server: AnthropicServer | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  await server?.close()
  runtime = undefined
  server = undefined
})

async function setUp(script: Script, config: TroupeConfig = {}): Promise<{ runtime: Runtime; server: AnthropicServer; env: Record<string, string> }> {
  server = await startAnthropicServer(script)
  runtime = createRuntime({ config: { maxParallel: 4, pool: { minThreads: 0, maxThreads: 1 }, cancelGraceMs: 500, governor: { enabled: false }, checkpoint: { enabled: false }, ...config } })
  const home = mkdtempSync(join(root, 'home-'))
  return { runtime, server, env: claudeEnv(home, server.url) }
}

const agent = (env: Record<string, string>, extra: Record<string, unknown> = {}) => ({ kind: 'claude-code', bin: claude, env, ...extra })

describe.runIf(hasRealCli('claude-code'))('claude-code agents (the real claude CLI, scripted Messages API)', () => {
  it('a prompt starting with "-" reaches the model as the prompt (not read as options: `-v` once printed the version)', async () => {
    const { runtime, server, env } = await setUp(({ session }) => ({ text: `echo: ${session}` }))
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = { name: 'dash', agents: { a: agent(env, { cwd }) }, tasks: [{ id: 't', agent: 'a', retries: 0, input: { prompt: '-v - first item\n- second item' } }] } as Plan
    const result = await runtime.run(plan).result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect((result.tasks.t?.output as { text: string }).text).toBe('echo: -v - first item\n- second item')
    expect(server.mainRequests()).toHaveLength(1)
  }, 60_000)

  it('a prompt over 128 KiB works (it once failed with spawn E2BIG as an argv element)', async () => {
    const { runtime, server, env } = await setUp(({ session }) => ({ text: `length ${session.length}` }))
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const prompt = `summarise: ${'lorem ipsum '.repeat(200 * 1024 / 12)}`.trim()
    const plan = { name: 'big', agents: { a: agent(env, { cwd }) }, tasks: [{ id: 't', agent: 'a', retries: 0, input: { prompt } }] } as Plan
    const result = await runtime.run(plan).result
    expect(prompt.length).toBeGreaterThan(128 * 1024)
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(server.mainRequests()[0]?.session).toBe(prompt)
  }, 60_000)
})
