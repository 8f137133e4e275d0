/**
 * A scripted Anthropic Messages API on 127.0.0.1 (port 0) for driving the REAL `claude` CLI in
 * tests (ANTHROPIC_BASE_URL=server.url). `POST /v1/messages` streams SSE the way the API does:
 * `message_start` (input usage) → per block `content_block_start` / `content_block_delta`
 * (`text_delta` or `input_json_delta`) / `content_block_stop` → `message_delta` (stop reason,
 * output usage) → `message_stop`. Non-streaming requests get the same message as one JSON body.
 *
 * The script is a function of the request's place in its conversation: `session` is the text of
 * the conversation's first user message (the task's prompt, for Claude Code), `turn` the number of
 * assistant messages already in `messages` (0 for the first model call of a session), `attempt`
 * how many times this (session, turn) was asked before (a client retry of a fault gets 1, 2, …).
 * So one script serves many parallel sessions and stays right under the CLI's own retries.
 *
 * Requests the CLI makes beside its main loop (a request without `tools`: title / topic / quota
 * checks) get `sideReply` (a short text by default) and are recorded with `side: true`.
 * `POST /v1/messages/count_tokens` answers a size estimate; any other path is a 404 in the
 * API's error shape. Everything is recorded in `requests`.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ToolUse {
  readonly name: string
  readonly input: Record<string, unknown>
  readonly id?: string
}

/** One scripted model call's answer. */
export type Turn =
  | {
      readonly text?: string
      readonly toolUses?: readonly ToolUse[]
      readonly inputTokens?: number
      readonly outputTokens?: number
      readonly cacheReadTokens?: number
      readonly cacheCreationTokens?: number
      /** The model named in the reply. @default the request's model */
      readonly model?: string
      /** Pause between SSE events, ms. @default 0 */
      readonly delayMs?: number
    }
  /** An HTTP error in the API's shape (429 → `rate_limit_error`); `retryAfterS` sets `retry-after`. */
  | { readonly status: number; readonly retryAfterS?: number; readonly message?: string }
  /** Answers 200 and the `message_start` event, then nothing until the client hangs up. */
  | { readonly stall: true }
  /** Sends `message_start` and part of a text block, then destroys the connection. */
  | { readonly drop: true }

export interface ScriptRequest {
  readonly session: string
  readonly turn: number
  readonly attempt: number
  readonly body: Record<string, unknown>
  /** The tool results the client sent back for the previous turn (content of the last user message). */
  readonly toolResults: readonly { readonly tool_use_id: string; readonly content: unknown; readonly is_error?: boolean }[]
}

/** A turn, or a promise of one (the reply waits: to order sessions against each other). */
export type Script = (request: ScriptRequest) => Turn | Promise<Turn>

export interface RecordedRequest {
  readonly index: number
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: Record<string, unknown>
  /** Epoch ms of arrival. */
  readonly at: number
  readonly side: boolean
  readonly session: string
  readonly turn: number
  readonly attempt: number
  /** What was answered: 'stream', 'json', an HTTP status, 'stall' or 'drop'. */
  reply: string
}

export interface AnthropicServer {
  readonly url: string
  readonly requests: readonly RecordedRequest[]
  /** The main-loop requests (not side requests, not count_tokens). */
  mainRequests(session?: string): RecordedRequest[]
  /** Resolves with the first main-loop request that matches. */
  waitFor(match: (request: RecordedRequest) => boolean): Promise<RecordedRequest>
  close(): Promise<void>
}

export interface AnthropicServerOptions {
  /** The answer to a request without tools. @default a short text */
  readonly sideReply?: (body: Record<string, unknown>) => Turn
}

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
}

const MAX_BODY = 64 << 20

export async function startAnthropicServer(script: Script, options: AnthropicServerOptions = {}): Promise<AnthropicServer> {
  const requests: RecordedRequest[] = []
  const attempts = new Map<string, number>()
  const waiters: { match: (request: RecordedRequest) => boolean; resolve: (request: RecordedRequest) => void }[] = []
  const sideReply = options.sideReply ?? (() => ({ text: 'ok', inputTokens: 5, outputTokens: 1 }))
  let messageIds = 0
  const server = createServer((req, res) => {
    const parts: Buffer[] = []
    let size = 0
    req.on('data', (part: Buffer) => {
      size += part.length
      if (size > MAX_BODY) req.destroy()
      else parts.push(part)
    })
    req.on('end', () => void answerRequest())
    const answerRequest = async (): Promise<void> => {
      const path = (req.url ?? '/').split('?')[0]!
      let body: Record<string, unknown> = {}
      try {
        body = parts.length === 0 ? {} : (JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>)
      } catch {
        return json(res, 400, errorBody(400, 'invalid JSON'))
      }
      if (req.method === 'POST' && path === '/v1/messages/count_tokens') {
        return json(res, 200, { input_tokens: Math.ceil(JSON.stringify(body.messages ?? []).length / 4) })
      }
      if (req.method !== 'POST' || path !== '/v1/messages') {
        return json(res, 404, errorBody(404, `not found: ${req.method} ${path}`))
      }
      const messages = Array.isArray(body.messages) ? (body.messages as Record<string, unknown>[]) : []
      const session = firstUserText(messages)
      const turn = messages.filter((m) => m.role === 'assistant').length
      const side = !Array.isArray(body.tools) || body.tools.length === 0
      const key = `${side ? 'side' : 'main'}\u0000${session}\u0000${turn}`
      const attempt = attempts.get(key) ?? 0
      attempts.set(key, attempt + 1)
      const last = messages.at(-1)
      const lastContent = last?.role === 'user' && Array.isArray(last.content) ? (last.content as Record<string, unknown>[]) : []
      const toolResults = lastContent.filter((b) => b.type === 'tool_result') as unknown as ScriptRequest['toolResults']
      const at = Date.now()
      const index = requests.length
      const recorded: RecordedRequest = { index, path, headers: req.headers, body, at, side, session, turn, attempt, reply: '' }
      requests.push(recorded)
      if (!side) for (const waiter of waiters.splice(0)) if (waiter.match(recorded)) waiter.resolve(recorded); else waiters.push(waiter)
      let answer: Turn
      try {
        answer = side ? sideReply(body) : await script({ session, turn, attempt, body, toolResults })
      } catch (error) {
        answer = { status: 500, message: `script error: ${(error as Error).message}` }
      }
      const model = typeof body.model === 'string' ? body.model : 'claude-scripted'
      if ('status' in answer) {
        recorded.reply = String(answer.status)
        const headers: Record<string, string> = answer.retryAfterS === undefined ? {} : { 'retry-after': String(answer.retryAfterS) }
        return json(res, answer.status, errorBody(answer.status, answer.message), headers)
      }
      const id = `msg_scripted_${++messageIds}`
      if ('stall' in answer) {
        recorded.reply = 'stall'
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.write(sse('message_start', { message: messageShell(id, model, 10) }))
        return
      }
      if ('drop' in answer) {
        recorded.reply = 'drop'
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.write(sse('message_start', { message: messageShell(id, model, 10) }))
        res.write(sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }))
        res.write(sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'partial' } }))
        setTimeout(() => res.destroy(), 20)
        return
      }
      if (body.stream !== true) {
        recorded.reply = 'json'
        return json(res, 200, wholeMessage(id, model, answer))
      }
      recorded.reply = 'stream'
      await stream(res, frames(id, model, answer), answer.delayMs ?? 0)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    mainRequests: (session) => requests.filter((r) => !r.side && (session === undefined || r.session === session)),
    waitFor: (match) => {
      const found = requests.find((r) => !r.side && match(r))
      return found !== undefined ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ match, resolve }))
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The text of the first user message: a string content, or its text blocks joined. */
function firstUserText(messages: readonly Record<string, unknown>[]): string {
  const first = messages.find((m) => m.role === 'user')
  if (first === undefined) return ''
  if (typeof first.content === 'string') return first.content
  if (!Array.isArray(first.content)) return ''
  // Claude Code puts <system-reminder> blocks before the prompt: the prompt is the last text block.
  const blocks = first.content as Record<string, unknown>[]
  const texts = blocks.filter((b) => b.type === 'text' && typeof b.text === 'string').map((b) => b.text as string)
  const own = texts.filter((t) => !t.startsWith('<system-reminder>'))
  return (own.at(-1) ?? texts.at(-1) ?? '').trim()
}

function errorBody(status: number, message?: string): unknown {
  return { type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message: message ?? `Scripted error ${status}` } }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function sse(event: string, body: object): string {
  return `event: ${event}\ndata: ${JSON.stringify({ type: event, ...body })}\n\n`
}

type Reply = Extract<Turn, { text?: string }>

function usageOf(turn: Reply): Record<string, number> {
  return {
    input_tokens: turn.inputTokens ?? 100,
    cache_read_input_tokens: turn.cacheReadTokens ?? 0,
    cache_creation_input_tokens: turn.cacheCreationTokens ?? 0,
    output_tokens: turn.outputTokens ?? 20,
  }
}

function messageShell(id: string, model: string, inputTokens: number): Record<string, unknown> {
  const usage = { input_tokens: inputTokens, output_tokens: 1 }
  return { id, type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage }
}

function blocksOf(turn: Reply): Record<string, unknown>[] {
  const blocks: Record<string, unknown>[] = []
  if (turn.text !== undefined) blocks.push({ type: 'text', text: turn.text })
  let n = 0
  for (const use of turn.toolUses ?? []) {
    blocks.push({ type: 'tool_use', id: use.id ?? `toolu_scripted_${Date.now().toString(36)}_${n++}`, name: use.name, input: use.input })
  }
  if (blocks.length === 0) blocks.push({ type: 'text', text: '' })
  return blocks
}

function wholeMessage(id: string, model: string, turn: Reply): Record<string, unknown> {
  const stop = (turn.toolUses?.length ?? 0) > 0 ? 'tool_use' : 'end_turn'
  return { ...messageShell(id, turn.model ?? model, 0), content: blocksOf(turn), stop_reason: stop, usage: usageOf(turn) }
}

function frames(id: string, model: string, turn: Reply): string[] {
  const usage = usageOf(turn)
  const out = [sse('message_start', { message: { ...messageShell(id, turn.model ?? model, 0), usage: { ...usage, output_tokens: 1 } } })]
  blocksOf(turn).forEach((block, index) => {
    if (block.type === 'text') {
      out.push(sse('content_block_start', { index, content_block: { type: 'text', text: '' } }))
      const text = block.text as string
      for (const piece of pieces(text)) out.push(sse('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }))
    } else {
      out.push(sse('content_block_start', { index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } }))
      const partial = JSON.stringify(block.input)
      for (const piece of pieces(partial)) {
        out.push(sse('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } }))
      }
    }
    out.push(sse('content_block_stop', { index }))
  })
  const stop = (turn.toolUses?.length ?? 0) > 0 ? 'tool_use' : 'end_turn'
  out.push(sse('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }))
  out.push(sse('message_stop', {}))
  return out
}

/** A text in deltas of up to 200 characters. */
function pieces(text: string): string[] {
  return text.match(/[\s\S]{1,200}/g) ?? []
}

async function stream(res: ServerResponse, events: readonly string[], delayMs: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': 'req_scripted' })
  for (const event of events) {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    if (res.destroyed) return
    res.write(event)
  }
  await new Promise<void>((resolve) => res.end(resolve))
}

/** A throwaway environment for the real `claude`: nothing is read from the machine's own configuration. */
export function claudeEnv(home: string, serverUrl: string): Record<string, string> {
  return {
    HOME: home,
    CLAUDE_CONFIG_DIR: `${home}/.claude`,
    ANTHROPIC_BASE_URL: serverUrl,
    ANTHROPIC_API_KEY: 'sk-ant-scripted-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    XDG_CONFIG_HOME: `${home}/.config`,
  }
}
