import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import type { Run } from '../../../src/runtime/run.ts'
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.ts'

// Stand-ins: test/fixtures/bin/codex and test/fixtures/bin/gemini replay each CLI's headless
// stream and, for `mcp …` prompts, find the `troupe` server where the real CLI would (Codex: the
// `-c mcp_servers.troupe.*` overrides; Gemini: the settings files, system settings at
// $GEMINI_CLI_SYSTEM_SETTINGS_PATH), apply the CLI's headless approval rule, and call the run
// tools with the official MCP SDK client. Each call is logged as `mcp <url> <tool> <answer>`.
const bin = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'bin', name)
const KINDS = ['codex', 'gemini'] as const
type Kind = (typeof KINDS)[number]

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({ config: { maxParallel: 4, pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 100, governor: { enabled: false }, checkpoint: { enabled: false } } })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

interface Step {
  readonly id: string
  readonly kind: Kind
  readonly prompt: string
  readonly dependsOn?: readonly string[]
  readonly args?: readonly string[]
  readonly env?: Readonly<Record<string, string>>
}

const plan = (name: string, ...steps: Step[]): Plan =>
  ({
    name,
    agents: Object.fromEntries(steps.map((step) => [step.id, { kind: step.kind, bin: bin(step.kind), ...(step.args === undefined ? {} : { args: step.args }), ...(step.env === undefined ? {} : { env: step.env }) }])),
    tasks: steps.map((step) => ({ id: step.id, agent: step.id, retries: 0, input: { prompt: step.prompt }, ...(step.dependsOn === undefined ? {} : { dependsOn: step.dependsOn }) })),
  }) as Plan

interface McpCall {
  readonly taskId: string
  readonly url: string
  readonly tool: string
  readonly text: string
}

const LINE = /^mcp (\S+) (\S+) (.*)$/s

/** Every run tool call the stand-ins report, in order. */
function calls(run: Run): McpCall[] {
  const seen: McpCall[] = []
  run.on('task:log', (event) => {
    const match = LINE.exec(event.message)
    if (match) seen.push({ taskId: event.taskId, url: match[1]!, tool: match[2]!, text: match[3]! })
  })
  return seen
}

/** The first call of `tool` a stand-in of the run reports. */
function firstCall(run: Run, tool: string): Promise<McpCall> {
  return new Promise((resolve) => {
    run.on('task:log', (event) => {
      const match = LINE.exec(event.message)
      if (match && match[2] === tool) resolve({ taskId: event.taskId, url: match[1]!, tool, text: match[3]! })
    })
  })
}

/** The settings files the gemini stand-in says it read. */
function settingsRead(run: Run): string[] {
  const files: string[] = []
  run.on('task:log', (event) => {
    const match = /^settings (.+)$/.exec(event.message)
    if (match) files.push(match[1]!)
  })
  return files
}

const answer = (call: McpCall | undefined) => JSON.parse(call?.text ?? 'null') as Record<string, unknown>

/** A tool call to an ended attempt's URL is refused, by HTTP and by the SDK client. */
async function expectRefused(url: string): Promise<void> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'claim_files', arguments: { paths: ['late.ts'] } } })
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body })
  expect(response.status).toBe(404)
  expect(await response.json()).toEqual({ error: 'unknown or ended attempt' })
  const client = new Client({ name: 'late', version: '1' })
  await expect(client.connect(new StreamableHTTPClientTransport(new URL(url)))).rejects.toMatchObject({ code: 404, message: expect.stringContaining('unknown or ended attempt') })
}

describe('run tools over MCP for Codex and Gemini (stand-ins)', () => {
  it.each(KINDS)('a %s task claims a file over MCP', async (kind) => {
    const run = runtime.run(plan(`claim-${kind}`, { id: 't', kind, prompt: 'mcp claim src/api.ts' }))
    const seen = calls(run)
    const result = await run.result
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(seen.map((call) => [call.tool, answer(call)])).toEqual([['claim_files', { granted: true }]])
  })

  it.each(KINDS)('a %s task reports a tool call to troupe in its stream', async (kind) => {
    const run = runtime.run(plan(`stream-${kind}`, { id: 't', kind, prompt: 'mcp claim src/stream.ts' }))
    const logs: string[] = []
    run.on('task:log', (event) => logs.push(event.message))
    await run.result
    expect(logs).toContain(kind === 'codex' ? 'tool troupe.claim_files' : 'tool mcp_troupe_claim_files {"paths":["src/stream.ts"]}')
  })

  it('a codex agent and a gemini agent claim the same file: the first is granted, the second is told the holder', async () => {
    const first = runtime.run(plan('holds', { id: 'coder-holds', kind: 'codex', prompt: 'mcp claim src/shared.ts; sleep 100' }))
    const held = await firstCall(first, 'claim_files')
    const second = runtime.run(plan('asks', { id: 'reviewer-asks', kind: 'gemini', prompt: 'mcp claim src/shared.ts' }))
    const refused = firstCall(second, 'claim_files')
    expect((await second.result).tasks['reviewer-asks']?.state).toBe('COMPLETED')
    expect(answer(held)).toEqual({ granted: true })
    expect(answer(await refused)).toMatchObject({ granted: false, holder: 'coder-holds', path: 'src/shared.ts' })
    await first.cancel('test done')
    expect((await first.result).tasks['coder-holds']?.state).toBe('CANCELLED')
  })

  it('a scratchpad note a codex task appends over MCP is read over MCP by a later gemini task', async () => {
    const run = runtime.run(
      plan('pad', { id: 'writer', kind: 'codex', prompt: 'mcp append API schema lives in docs/api.md' }, { id: 'reader', kind: 'gemini', prompt: 'mcp read', dependsOn: ['writer'] }),
    )
    const seen = calls(run)
    const result = await run.result
    expect(result.tasks.reader?.state).toBe('COMPLETED')
    const read = seen.find((call) => call.taskId === 'reader' && call.tool === 'scratchpad_read')
    expect(answer(read)).toMatchObject({ notes: [{ taskId: 'writer', text: 'API schema lives in docs/api.md' }] })
  })

  it.each(KINDS)('report_progress from a %s task over MCP is a task:progress event', async (kind) => {
    const run = runtime.run(plan(`progress-${kind}`, { id: 't', kind, prompt: 'mcp progress 0.5 halfway there' }))
    const progress: { fraction: number; message: string | undefined }[] = []
    run.on('task:progress', (event) => progress.push({ fraction: event.fraction, message: event.message }))
    await run.result
    expect(progress).toContainEqual({ fraction: 0.5, message: 'halfway there' })
  })

  it.each(KINDS)('a %s tool call with invalid arguments gets the error text and the task goes on', async (kind) => {
    const run = runtime.run(plan(`invalid-${kind}`, { id: 't', kind, prompt: 'mcp call report_progress {"fraction": 2}; claim src/after.ts' }))
    const seen = calls(run)
    expect((await run.result).tasks.t?.state).toBe('COMPLETED')
    expect(seen[0]?.text).toContain('Expected `fraction` to be a number from 0 to 1, got `2` (number)')
    expect(answer(seen[1])).toEqual({ granted: true })
  })

  it.each(KINDS)('nothing of the server outlives a %s attempt: a tool call to its URL afterwards is refused', async (kind) => {
    const run = runtime.run(plan(`revoked-${kind}`, { id: 't', kind, prompt: 'mcp claim src/revoked.ts' }))
    const seen = calls(run)
    expect((await run.result).tasks.t?.state).toBe('COMPLETED')
    await expectRefused(seen[0]!.url)
  })

  it('a cancelled attempt: a tool call to its URL afterwards is refused', async () => {
    const run = runtime.run(plan('cancelled', { id: 't', kind: 'codex', prompt: 'mcp claim src/cancelled.ts; sleep 100' }))
    const held = await firstCall(run, 'claim_files')
    await run.cancel('test done')
    await run.result
    await expectRefused(held.url)
  })

  it('the Gemini settings file troupe wrote for an attempt is gone when the attempt ends', async () => {
    const run = runtime.run(plan('settings', { id: 't', kind: 'gemini', prompt: 'mcp read' }))
    const files = settingsRead(run)
    expect((await run.result).tasks.t?.state).toBe('COMPLETED')
    const ours = files.filter((file) => file.endsWith('gemini-system-defaults.json'))
    expect(ours).toHaveLength(1)
    expect(existsSync(ours[0]!)).toBe(false)
  })

  it("Gemini still reads the administrator's system settings and the system defaults, with troupe added to the defaults", async () => {
    const etc = mkdtempSync(join(tmpdir(), 'troupe-gemini-etc-'))
    const system = join(etc, 'settings.json')
    writeFileSync(system, JSON.stringify({ mcpServers: { admin: { httpUrl: 'http://127.0.0.1:9/admin' } } }))
    writeFileSync(join(etc, 'system-defaults.json'), JSON.stringify({ mcpServers: { team: { httpUrl: 'http://127.0.0.1:9/team' } } }))
    const run = runtime.run(plan('admin', { id: 't', kind: 'gemini', prompt: 'mcp claim src/admin.ts', env: { GEMINI_CLI_SYSTEM_SETTINGS_PATH: system } }))
    const files = settingsRead(run)
    const logs: string[] = []
    run.on('task:log', (event) => logs.push(event.message))
    const seen = calls(run)
    const result = await run.result.finally(() => rmSync(etc, { recursive: true, force: true }))
    expect(result.tasks.t?.state).toBe('COMPLETED')
    expect(files).toContain(system)
    expect(logs).toContain('servers team,troupe,admin')
    expect(answer(seen[0])).toEqual({ granted: true })
  })

  it('codex exec declines a tool call the server is not approved for (what troupe’s default_tools_approval_mode="approve" prevents)', async () => {
    // A later `-c` wins in codex: the agent's own args put the troupe server back to "prompt".
    const args = ['-c', 'mcp_servers.troupe.default_tools_approval_mode="prompt"']
    const run = runtime.run(plan('declined', { id: 't', kind: 'codex', prompt: 'mcp claim src/declined.ts', args }))
    const seen = calls(run)
    expect((await run.result).tasks.t?.state).toBe('COMPLETED')
    expect(seen.map((call) => call.text)).toEqual(['user cancelled MCP tool call'])
  })
})
