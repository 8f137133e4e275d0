import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Mailbox, MAX_INBOX_MESSAGES, MAX_RUN_MESSAGES } from '../../../src/runtime/coordination/mailbox.ts'
import { McpToolServer } from '../../../src/runtime/coordination/mcp-server.ts'
import type { ToolBinding } from '../../../src/runtime/coordination/run-tools.ts'
import { Scratchpad } from '../../../src/runtime/coordination/scratchpad.ts'
import { outputText } from '../../../src/runtime/coordination/tool-output.ts'
import { isTroupeError } from '../../../src/runtime/core/errors.ts'
import type { WaitTasksAnswer, WaitTasksRequest } from '../../../src/runtime/execution/executor.ts'

// A real MCP client (the official SDK's) calls wait_tasks, add_tasks with wait, send_message and read_messages.
const server = new McpToolServer()
const root = mkdtempSync(join(tmpdir(), 'troupe-delegation-tools-'))
const requests: WaitTasksRequest[] = []
let answer: WaitTasksAnswer = { ok: true, timedOut: false, tasks: {} }
let mailbox: Mailbox
let lead: Client
let kid: Client

async function connect(binding: ToolBinding): Promise<Client> {
  const endpoint = await server.bind(binding)
  const client = new Client({ name: 'test', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint.url)))
  return client
}

async function binding(taskId: string): Promise<ToolBinding> {
  return {
    runId: 'r',
    taskId,
    claim: () => ({ granted: true }),
    release: () => {},
    progress: () => {},
    log: () => {},
    scratchpad: await Scratchpad.open(undefined),
    waitTasks: async (request) => {
      requests.push(request)
      return answer
    },
    mailbox,
  }
}

beforeAll(async () => {
  mailbox = await Mailbox.open(join(root, 'run', 'messages.jsonl'), { isTask: (id) => ['lead', 'kid'].includes(id) })
  lead = await connect(await binding('lead'))
  kid = await connect(await binding('kid'))
})

afterAll(async () => {
  await lead.close()
  await kid.close()
  await server.close()
  rmSync(root, { recursive: true, force: true })
})

type ToolAnswer = { isError?: boolean; content: { type: string; text: string }[] }
async function call(client: Client, name: string, args: Record<string, unknown>): Promise<{ isError: boolean; text: string }> {
  const result = (await client.callTool({ name, arguments: args })) as ToolAnswer
  return { isError: result.isError === true, text: result.content.map((block) => block.text).join('') }
}

describe('wait_tasks and add_tasks with wait over MCP', () => {
  it('wait_tasks hands the ids and the timeout in ms to the run; the default timeout is the most, 3600 s', async () => {
    requests.length = 0
    await call(lead, 'wait_tasks', { ids: ['a'], timeout: 2.5 })
    await call(lead, 'wait_tasks', { ids: ['a', 'b'] })
    expect(requests).toEqual([
      { ids: ['a'], timeoutMs: 2500 },
      { ids: ['a', 'b'], timeoutMs: 3_600_000 },
    ])
  })

  it('add_tasks with wait: true adds and waits in one call', async () => {
    requests.length = 0
    answer = { ok: true, added: ['x'], timedOut: false, tasks: { x: { state: 'COMPLETED', output: 'done' } } }
    const reply = await call(lead, 'add_tasks', { tasks: [{ id: 'x', agent: 'sh' }], wait: true, timeout: 60 })
    expect(requests).toEqual([{ add: [{ id: 'x', agent: 'sh' }], timeoutMs: 60_000 }])
    expect(JSON.parse(reply.text)).toEqual({ added: ['x'], timedOut: false, tasks: { x: { state: 'COMPLETED', output: 'done' } } })
  })

  it('outputs reach the agent as text without escape sequences or control characters, cut at 16000 characters', async () => {
    answer = { ok: true, timedOut: false, tasks: { a: { state: 'COMPLETED', output: '\u001b[31mred\u001b[0m\u0007 ok\u202e' }, b: { state: 'COMPLETED', output: 'y'.repeat(20_000) } } }
    const view = JSON.parse((await call(lead, 'wait_tasks', { ids: ['a', 'b'] })).text) as { tasks: Record<string, { output: string }> }
    expect(view.tasks.a?.output).toBe('red ok')
    expect(view.tasks.b?.output).toBe(`${'y'.repeat(16_000)}… [cut: 4000 more characters]`)
  })

  it('a refusal is an error answer led by its code', async () => {
    answer = { ok: false, error: { code: 'ERR_TASK_NOT_DELEGATED', message: 'task "lead" may wait only for tasks it added' } }
    expect(await call(lead, 'wait_tasks', { ids: ['other'] })).toEqual({ isError: true, text: 'ERR_TASK_NOT_DELEGATED: task "lead" may wait only for tasks it added' })
  })

  it.each([
    [{ ids: [] }, 'Expected `ids` to be a list of 1 to 100 task ids (ones this task added), got `[]` (an empty list)'],
    [{ ids: Array.from({ length: 101 }, (_, i) => `t${i}`) }, 'Expected `ids` to be a list of 1 to 100 task ids'],
    [{ ids: [''] }, 'Expected each of `ids` to be a task id: a non-empty string of at most 256 characters'],
    [{ ids: ['a'], timeout: 0 }, 'Expected `timeout` to be a number of seconds from 1 to 3600, got `0` (number)'],
    [{ ids: ['a'], timeout: 3601 }, 'Expected `timeout` to be a number of seconds from 1 to 3600, got `3601` (number)'],
  ])('wait_tasks refuses %j naming the argument; the run is not asked', async (args, message) => {
    requests.length = 0
    const reply = await call(lead, 'wait_tasks', args)
    expect(reply.isError).toBe(true)
    expect(reply.text).toContain(message)
    expect(requests).toEqual([])
  })

  it('add_tasks refuses a `wait` that is not a boolean', async () => {
    const reply = await call(lead, 'add_tasks', { tasks: [{ id: 'x' }], wait: 'yes' })
    expect(reply.text).toContain('Expected `wait` to be true or false, got `"yes"` (string)')
  })
})

describe('a wait in progress when the attempt is stopped', () => {
  it('answers ERR_CANCELLED at once (the run never answers a stopped attempt\'s wait): the CLI is not left in the call', async () => {
    const stop = new AbortController()
    let entered!: () => void
    const waiting = new Promise<void>((resolve) => (entered = resolve))
    const never = () => {
      entered()
      return new Promise<WaitTasksAnswer>(() => {})
    }
    const client = await connect({ ...(await binding('lead')), waitTasks: never, stopped: stop.signal })
    const reply = call(client, 'wait_tasks', { ids: ['kid'] })
    // The call is in the run's hands before the attempt is stopped.
    await waiting
    stop.abort()
    expect(await reply).toEqual({ isError: true, text: 'ERR_CANCELLED: task "lead" was stopped (cancelled or timed out) while it waited' })
    await client.close()
  })

  it('a call made after the attempt was stopped answers ERR_CANCELLED without asking the run', async () => {
    const stop = new AbortController()
    stop.abort()
    requests.length = 0
    const client = await connect({ ...(await binding('lead')), stopped: stop.signal })
    expect((await call(client, 'add_tasks', { tasks: [{ id: 'x' }], wait: true })).text).toMatch(/^ERR_CANCELLED: /)
    expect(requests).toEqual([])
    await client.close()
  })
})

describe('send_message / read_messages over MCP', () => {
  it('a message to a task is in its inbox only, with sender and position, and on disk', async () => {
    const sent = JSON.parse((await call(lead, 'send_message', { to: 'kid', text: 'use src/api' })).text) as { message: { seq: number } }
    expect(sent.message).toMatchObject({ from: 'lead', to: 'kid', text: 'use src/api' })
    expect(JSON.parse((await call(kid, 'read_messages', {})).text)).toMatchObject({ messages: [{ from: 'lead', to: 'kid', text: 'use src/api' }], total: 1 })
    expect(JSON.parse((await call(lead, 'read_messages', {})).text)).toEqual({ messages: [], total: 0 })
    expect(readFileSync(join(root, 'run', 'messages.jsonl'), 'utf8')).toContain('"text":"use src/api"')
  })

  it('a message is stored without escape sequences or control characters; one of nothing else is refused', async () => {
    const sent = JSON.parse((await call(lead, 'send_message', { to: 'kid', text: '\u001b]0;pwned\u0007see \u001b[1mthis\u001b[0m' })).text) as { message: { text: string } }
    expect(sent.message.text).toBe('see this')
    const blank = await call(lead, 'send_message', { to: 'kid', text: '\u001b[2J\u0007' })
    expect(blank).toEqual({ isError: true, text: 'ERR_ARGUMENT_INVALID: send_message: `text` must be a non-empty string of at most 8000 characters, got 0 characters of blank or control characters' })
  })

  it('a message to a task the run does not have is refused ERR_ARGUMENT_INVALID', async () => {
    const reply = await call(lead, 'send_message', { to: 'ghost', text: 'hi' })
    expect(reply).toEqual({ isError: true, text: 'ERR_ARGUMENT_INVALID: send_message: `to` must be the id of a task of this run, got "ghost"' })
  })

  it('a message over 8000 characters is refused naming the argument, not cut', async () => {
    const reply = await call(lead, 'send_message', { to: 'kid', text: 'x'.repeat(8_001) })
    expect(reply.text).toContain('Expected `text` to be a non-empty message of at most 8000 characters, got a string of 8001 characters')
  })

  it('read_messages pages with since/limit and refuses a limit over 100', async () => {
    for (let i = 0; i < 3; i++) await call(kid, 'send_message', { to: 'lead', text: `m${i}` })
    const first = JSON.parse((await call(lead, 'read_messages', { limit: 2 })).text) as { messages: { text: string }[]; next: number }
    expect([first.messages.map((m) => m.text), first.next]).toEqual([['m0', 'm1'], 2])
    const rest = JSON.parse((await call(lead, 'read_messages', { since: first.next })).text) as { messages: { text: string }[]; next?: number }
    expect([rest.messages.map((m) => m.text), rest.next]).toEqual([['m2'], undefined])
    expect((await call(lead, 'read_messages', { limit: 101 })).text).toContain('Expected `limit` to be a whole number of messages from 1 to 100')
  })
})

describe('Mailbox', () => {
  it('a reopened mailbox (a resumed run) holds every message sent before; a torn last line is dropped', async () => {
    const file = join(root, 'resume', 'messages.jsonl')
    const first = await Mailbox.open(file, { isTask: () => true })
    await first.send('lead', 'kid', 'one', 1)
    await first.send('kid', 'lead', 'two', 2)
    appendFileSync(file, '{"from":"lead","to":"kid","at":3,"te')
    const again = await Mailbox.open(file, { isTask: () => true })
    expect(again.inbox('kid')).toEqual({ messages: [{ seq: 0, from: 'lead', to: 'kid', at: 1, text: 'one' }], total: 1 })
    expect(again.inbox('lead').messages).toEqual([{ seq: 1, from: 'kid', to: 'lead', at: 2, text: 'two' }])
  })

  it('tells onMessage of each message once it is on disk, clean, and of none it refused', async () => {
    const file = join(root, 'told', 'messages.jsonl')
    const told: { seq: number; text: string; onDisk: boolean }[] = []
    const box = await Mailbox.open(file, {
      isTask: (id) => id !== 'ghost',
      onMessage: (m) => told.push({ seq: m.seq, text: m.text, onDisk: readFileSync(file, 'utf8').includes(`"text":"${m.text}"`) }),
    })
    await box.send('lead', 'kid', '\u001b[1mbold\u001b[0m')
    await box.send('lead', 'ghost', 'lost').catch(() => undefined)
    expect(told).toEqual([{ seq: 0, text: 'bold', onDisk: true }])
  })

  it(`an inbox holds at most ${MAX_INBOX_MESSAGES} messages: the next is refused ERR_MAILBOX_FULL naming the task`, async () => {
    const box = await Mailbox.open(undefined, { isTask: () => true })
    for (let i = 0; i < MAX_INBOX_MESSAGES; i++) await box.send('a', 'b', `m${i}`)
    const error = await box.send('a', 'b', 'one more').catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_MAILBOX_FULL')).toBe(true)
    expect((error as Error).message).toContain('the inbox of task "b" holds 1000 messages')
    expect(box.size).toBe(MAX_INBOX_MESSAGES)
  })

  it(`a run holds at most ${MAX_RUN_MESSAGES} messages: the next is refused ERR_MAILBOX_FULL`, async () => {
    const box = await Mailbox.open(undefined, { isTask: () => true })
    for (let i = 0; i < MAX_RUN_MESSAGES; i++) await box.send('a', `t${i % 10}`, 'x')
    const error = await box.send('a', 'fresh', 'x').catch((e: unknown) => e)
    expect(isTroupeError(error, 'ERR_MAILBOX_FULL')).toBe(true)
    expect((error as Error).message).toContain('the run holds 10000 messages')
  })
})

describe('outputText', () => {
  it('renders a non-string output as JSON and removes OSC sequences (a terminal title, a hyperlink)', () => {
    expect(outputText({ a: 1 })).toBe('{"a":1}')
    expect(outputText('\u001b]0;pwned\u0007title\u001b]8;;http://x\u001b\\link')).toBe('titlelink')
  })
})
