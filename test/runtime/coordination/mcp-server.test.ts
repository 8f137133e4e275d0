import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterEach, describe, expect, it } from 'vitest'
import { ClaimRegistry } from '../../../src/runtime/admission/claims.ts'
import { McpToolServer } from '../../../src/runtime/coordination/mcp-server.ts'
import type { ToolBinding } from '../../../src/runtime/coordination/run-tools.ts'
import { Scratchpad } from '../../../src/runtime/coordination/scratchpad.ts'

const servers: McpToolServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

function binding(registry: ClaimRegistry, scratchpad: Scratchpad, taskId: string, logs: string[] = []): ToolBinding {
  return {
    runId: 'r',
    taskId,
    claim: (path) => registry.claim('r', taskId, path),
    release: (path) => void registry.unclaim('r', taskId, path),
    progress: (fraction, message) => logs.push(`progress ${fraction} ${message ?? ''}`),
    log: (message) => logs.push(message),
    scratchpad,
  }
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'test', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

const json = (result: unknown) => JSON.parse((result as { content: { text: string }[] }).content[0]!.text) as Record<string, unknown>

describe('McpToolServer', () => {
  it('lists the ten run tools', async () => {
    const server = new McpToolServer()
    servers.push(server)
    const endpoint = await server.bind(binding(new ClaimRegistry(), await Scratchpad.open(undefined), 'a'))
    const client = await connect(endpoint.url)
    const names = (await client.listTools()).tools.map((t) => t.name).sort()
    await client.close()
    expect(names).toEqual(['add_tasks', 'claim_files', 'log', 'read_messages', 'release_files', 'report_progress', 'scratchpad_append', 'scratchpad_read', 'send_message', 'wait_tasks'])
  })

  it('grants a claim to one agent and tells the second the holder (the same registry as ctx.claim)', async () => {
    const server = new McpToolServer()
    servers.push(server)
    const registry = new ClaimRegistry()
    const pad = await Scratchpad.open(undefined)
    const [first, second] = await Promise.all([server.bind(binding(registry, pad, 'a')), server.bind(binding(registry, pad, 'b'))])
    const [ca, cb] = await Promise.all([connect(first.url), connect(second.url)])
    const granted = json(await ca.callTool({ name: 'claim_files', arguments: { paths: ['src/api/user.ts'] } }))
    const refused = json(await cb.callTool({ name: 'claim_files', arguments: { paths: ['src/api/**'] } }))
    expect(granted).toEqual({ granted: true })
    expect(refused).toMatchObject({ granted: false, holder: 'a' })
    expect(registry.claim('r', 'c', 'src/api/user.ts')).toMatchObject({ granted: false, holder: 'a' })
    await Promise.all([ca.close(), cb.close()])
  })

  it('shares the scratchpad between agents and keeps it on disk', async () => {
    const server = new McpToolServer()
    servers.push(server)
    const file = join(mkdtempSync(join(tmpdir(), 'troupe-pad-')), 'scratchpad.jsonl')
    const pad = await Scratchpad.open(file)
    const registry = new ClaimRegistry()
    const a = await connect((await server.bind(binding(registry, pad, 'a'))).url)
    const b = await connect((await server.bind(binding(registry, pad, 'b'))).url)
    await a.callTool({ name: 'scratchpad_append', arguments: { text: 'API schema is in docs/api.md' } })
    const read = json(await b.callTool({ name: 'scratchpad_read', arguments: {} })) as { notes: { taskId: string; text: string }[] }
    expect(read.notes.map((n) => [n.taskId, n.text])).toEqual([['a', 'API schema is in docs/api.md']])
    expect(readFileSync(file, 'utf8')).toContain('docs/api.md')
    expect((await Scratchpad.open(file)).read()).toHaveLength(1)
    await Promise.all([a.close(), b.close()])
  })

  it('rejects invalid tool arguments with a clear error, and answers nothing once the attempt is revoked', async () => {
    const server = new McpToolServer()
    servers.push(server)
    const endpoint = await server.bind(binding(new ClaimRegistry(), await Scratchpad.open(undefined), 'a'))
    const client = await connect(endpoint.url)
    const bad = (await client.callTool({ name: 'report_progress', arguments: { fraction: 7 } })) as { isError?: boolean; content: { text: string }[] }
    expect(bad.isError).toBe(true)
    expect(bad.content[0]!.text).toMatch(/fraction/)
    await client.close()
    endpoint.revoke()
    expect(server.bound).toBe(0)
    const response = await fetch(endpoint.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(response.status).toBe(404)
  })
})
