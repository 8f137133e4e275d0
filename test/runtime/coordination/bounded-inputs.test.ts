import { request } from 'node:http'
import { resolve } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterEach, describe, expect, it } from 'vitest'
import { ClaimRegistry } from '../../../src/runtime/admission/claims.ts'
import { McpToolServer } from '../../../src/runtime/coordination/mcp-server.ts'
import type { ToolBinding } from '../../../src/runtime/coordination/run-tools.ts'
import { MAX_NOTE_CHARS, MAX_NOTES, MAX_PAGE_CHARS, Scratchpad, type Note } from '../../../src/runtime/coordination/scratchpad.ts'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import { checkCondition } from '../../../src/runtime/plan/condition.ts'
import { createRuntime } from '../../../src/runtime/runtime.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

/**
 * Regression (#22.4): unbounded reads and inputs — a 153 MB scratchpad read, a reset instead
 * of 413, a stack overflow, unlimited added tasks, prototype members in `when`.
 */

const servers: McpToolServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

function binding(scratchpad: Scratchpad, addTasks?: ToolBinding['addTasks']): ToolBinding {
  const registry = new ClaimRegistry()
  return {
    runId: 'r',
    taskId: 'a',
    claim: (path) => registry.claim('r', 'a', path),
    release: () => undefined,
    progress: () => undefined,
    log: () => undefined,
    scratchpad,
    ...(addTasks === undefined ? {} : { addTasks }),
  }
}

async function endpoint(scratchpad: Scratchpad, addTasks?: ToolBinding['addTasks']): Promise<string> {
  const server = new McpToolServer()
  servers.push(server)
  return (await server.bind(binding(scratchpad, addTasks))).url
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'test', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

/** POSTs raw bytes to the MCP URL; resolves with the status (a reset rejects). */
function post(url: string, body: string | Buffer): Promise<{ status: number; body: string }> {
  const { hostname, port, pathname } = new URL(url)
  return new Promise((done, fail) => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
    const req = request({ host: hostname, port, path: pathname, method: 'POST', headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => done({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', fail)
    req.end(body)
  })
}

type ToolReply = { isError?: boolean; content: { text: string }[] }
const json = (result: unknown) => JSON.parse((result as { content: { text: string }[] }).content[0]!.text) as Record<string, unknown>

async function fullPad(notes: number): Promise<Scratchpad> {
  const pad = await Scratchpad.open(undefined)
  for (let i = 0; i < notes; i++) await pad.append(`t${i}`, `${i} `.padEnd(MAX_NOTE_CHARS, 'x'))
  return pad
}

describe('scratchpad_read pages', () => {
  it('returns at most 100 notes by default and continues from `next` until every note was read once', async () => {
    const client = await connect(await endpoint(await fullPad(250)))
    const seen: string[] = []
    let since: number | undefined = 0
    let pages = 0
    while (since !== undefined) {
      const page = json(await client.callTool({ name: 'scratchpad_read', arguments: { since } })) as { notes: Note[]; next?: number }
      expect(page.notes.length).toBeLessThanOrEqual(100)
      expect(page.notes.reduce((sum, note) => sum + note.text.length, 0)).toBeLessThanOrEqual(MAX_PAGE_CHARS)
      seen.push(...page.notes.map((note) => note.taskId))
      since = page.next
      pages++
    }
    await client.close()
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => `t${i}`))
    expect(pages).toBeGreaterThan(2)
  })

  it('refuses a `limit` over 1000 with an error naming the argument', async () => {
    const client = await connect(await endpoint(await Scratchpad.open(undefined)))
    const result = (await client.callTool({ name: 'scratchpad_read', arguments: { limit: 100_000 } })) as ToolReply
    await client.close()
    expect(result.isError).toBe(true)
    expect(result.content[0]!.text).toContain('Expected `limit` to be a whole number of notes from 1 to 1000, got `100000` (number)')
  })

  it('keeps 8 concurrent readers of a full pad (10,000 notes of 8,000 characters) under 300 MB of RSS', async () => {
    const pad = await fullPad(MAX_NOTES)
    const url = await endpoint(pad)
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect(url)))
    let peak = process.memoryUsage().rss
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
    await Promise.all(clients.map((client) => client.callTool({ name: 'scratchpad_read', arguments: { limit: 1000 } })))
    clearInterval(sampler)
    await Promise.all(clients.map((client) => client.close()))
    expect(peak / 1024 / 1024).toBeLessThan(300)
  }, 60_000)
})

describe('MCP request bounds', () => {
  it('answers a body over 1 MB with 413, not a reset', async () => {
    const url = await endpoint(await Scratchpad.open(undefined))
    const reply = await post(url, Buffer.alloc(2 * 1024 * 1024, 0x20))
    expect(reply.status).toBe(413)
    expect(reply.body).toContain('ERR_ARGUMENT_INVALID')
  })

  it('refuses add_tasks nesting 400,000 levels before parsing it, with ERR_ARGUMENT_INVALID, and keeps serving', async () => {
    let called = false
    const url = await endpoint(await Scratchpad.open(undefined), async () => {
      called = true
      return { added: [] }
    })
    const deep = `${'['.repeat(400_000)}${']'.repeat(400_000)}`
    const params = { name: 'add_tasks', arguments: { tasks: [{ id: 'x', agent: 'a', input: 'DEEP' }] } }
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params }
    const body = JSON.stringify(call).replace('"DEEP"', deep)
    const reply = await post(url, body)
    expect(reply.status).toBe(400)
    expect(reply.body).toContain('ERR_ARGUMENT_INVALID: the request body nests more than')
    expect(called).toBe(false)
    const client = await connect(url)
    expect(json(await client.callTool({ name: 'log', arguments: { message: 'still here' } }))).toEqual({ ok: true })
    await client.close()
  })
})

describe('tasks added per run', () => {
  it('refuses additions past config.maxAddedTasks with ERR_QUEUE_FULL naming it', async () => {
    const runtime = createRuntime({ config: { maxAddedTasks: 5, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const spawn = resolve('test/fixtures/agents/spawn.mjs')
    const noop = resolve('test/fixtures/agents/noop.mjs')
    const children = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, agent: noop }))
    const plan = {
      name: 'cap',
      tasks: [
        { id: 'first', agent: spawn, input: { children: children('a', 4) } },
        { id: 'second', agent: spawn, input: { children: children('b', 2) }, dependsOn: ['first'] },
      ],
    } as Plan
    const result = await runtime.run(plan).result
    await runtime.close()
    expect(result.tasks.first?.output).toMatchObject({ added: ['a0', 'a1', 'a2', 'a3'] })
    const message = expect.stringContaining('4 were added already and config.maxAddedTasks is 5')
    expect(result.tasks.second?.output).toMatchObject({ error: { code: 'ERR_QUEUE_FULL', message } })
  }, 30_000)
})

describe('`when` conditions', () => {
  const inherited = ["input['constructor']['constructor']", "input.a['hasOwnProperty']", 'input.prototype', "input.list['__proto__']"]
  it.each(inherited)('refuses %s, a prototype member, with ERR_PLAN_INVALID', (source) => {
    const error = troupeErrorOf(() => checkCondition(source, 'tasks[0].when', 't', new Set()))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('a member every object inherits')
  })

  it('refuses a computed member key, which could spell a prototype member', () => {
    const error = troupeErrorOf(() => checkCondition("input['constr' + 'uctor']", 'tasks[0].when', 't', new Set()))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('through a computed key')
  })

  it('accepts data members, literal indexes and relative filters', () => {
    const source = "input.list[0] == 1 && input['a-b'].c && input.items[.ok == true]"
    expect(() => checkCondition(source, 'tasks[0].when', 't', new Set())).not.toThrow()
  })
})
