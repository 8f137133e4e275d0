import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { MAX_INPUT_DEPTH } from '../plan/plan-schema.ts'
import { runTools, type ToolBinding } from './run-tools.ts'

/** Where an attempt's MCP client connects, and how to stop it. */
export interface McpEndpoint {
  readonly url: string
  /** Ends the binding: later calls with this URL get 404. */
  revoke(): void
}

/** The MCP SDK and the tools' zod schemas, loaded with the first request: most runtimes never serve one. */
async function loadSdk() {
  const [{ McpServer }, { StreamableHTTPServerTransport }, { toolArguments }] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/mcp.js'),
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('./tool-arguments.ts'),
  ])
  return { McpServer, StreamableHTTPServerTransport, toolArguments }
}
type Sdk = Awaited<ReturnType<typeof loadSdk>>
let sdk: Promise<Sdk> | undefined

/** Longest request body accepted (a large add_tasks call fits; nothing unbounded). */
const MAX_BODY = 1 << 20
/** Past this much, an oversize body is not drained any more: the connection is cut. */
const DRAIN_LIMIT = 64 * MAX_BODY
/** Deepest nesting of a request body: a task input's bound plus the JSON-RPC envelope around it. */
const MAX_BODY_DEPTH = MAX_INPUT_DEPTH + 16

/**
 * The run tools over MCP (Streamable HTTP, stateless) for CLI agents: one HTTP server per
 * runtime on 127.0.0.1, and one unguessable URL per attempt (`/mcp/<token>`), bound to that
 * attempt's run and task and revoked when the attempt ends — so nothing of it outlives the
 * attempt, and an agent can only act as itself.
 */
export class McpToolServer {
  readonly #bindings = new Map<string, ToolBinding>()
  #server: Server | undefined
  #listening: Promise<void> | undefined
  #port = 0

  /** Starts listening (once); resolves when ready. */
  start(): Promise<void> {
    this.#listening ??= new Promise<void>((resolve, reject) => {
      const server = createServer((req, res) => void this.#handle(req, res))
      this.#server = server
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        server.unref()
        this.#port = (server.address() as AddressInfo).port
        resolve()
      })
    })
    return this.#listening
  }

  /** A URL for one attempt's tools. */
  async bind(binding: ToolBinding): Promise<McpEndpoint> {
    await this.start()
    const token = randomBytes(18).toString('base64url')
    this.#bindings.set(token, binding)
    return { url: `http://127.0.0.1:${this.#port}/mcp/${token}`, revoke: () => void this.#bindings.delete(token) }
  }

  /** Attempts bound right now. */
  get bound(): number {
    return this.#bindings.size
  }

  async close(): Promise<void> {
    this.#bindings.clear()
    const server = this.#server
    this.#server = undefined
    this.#listening = undefined
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = /^\/mcp\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')
    const binding = match ? this.#bindings.get(match[1]!) : undefined
    if (binding === undefined) return end(res, 404, 'unknown or ended attempt')
    if (req.method !== 'POST') return end(res, 405, 'POST only (stateless Streamable HTTP)')
    const text = await readBody(req)
    if (text === undefined) return end(res, 413, `ERR_ARGUMENT_INVALID: the request body is over ${MAX_BODY} bytes`, true)
    // Bounded before parsing: every later step (the SDK's schema checks, the plan's) walks the value recursively.
    const depth = nestingDepth(text, MAX_BODY_DEPTH)
    if (depth > MAX_BODY_DEPTH) {
      const message = `the request body nests more than ${MAX_BODY_DEPTH} levels (a task's input may nest at most ${MAX_INPUT_DEPTH})`
      return end(res, 400, `ERR_ARGUMENT_INVALID: ${message}`)
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (error) {
      return end(res, 400, (error as Error).message)
    }
    let loaded: Sdk
    try {
      loaded = await (sdk ??= loadSdk())
    } catch (error) {
      return end(res, 500, (error as Error).message)
    }
    const server = toolServer(loaded, binding)
    const transport = new loaded.StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    res.on('close', () => {
      void transport.close()
      void server.close()
    })
    try {
      await server.connect(transport)
      await transport.handleRequest(req, res, body)
    } catch (error) {
      if (!res.headersSent) end(res, 500, (error as Error).message)
    }
  }
}

/** One MCP server with the run tools, bound to an attempt. */
function toolServer({ McpServer, toolArguments }: Sdk, binding: ToolBinding): McpServer {
  const server = new McpServer({ name: 'troupe', version: '1' })
  const text = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }], structuredContent: value as Record<string, unknown> })
  const guard = async (fn: () => unknown) => {
    try {
      return text(await fn())
    } catch (error) {
      // A TroupeError's code leads its text (`ERR_MAILBOX_FULL: …`), as add_tasks reports a refused addition.
      const code = (error as { code?: unknown }).code
      const message = (error as Error).message
      return { content: [{ type: 'text' as const, text: typeof code === 'string' && code.startsWith('ERR_') ? `${code}: ${message}` : message }], isError: true }
    }
  }
  server.registerTool(
    'claim_files',
    { description: 'Claim files or globs before editing them. All or nothing: refused with the holder when another running task holds an overlapping claim.', inputSchema: toolArguments.claimFiles },
    ({ paths }) => guard(() => runTools.claimFiles(binding, paths)),
  )
  server.registerTool('release_files', { description: 'Release claims taken with claim_files.', inputSchema: toolArguments.releaseFiles }, ({ paths }) =>
    guard(() => runTools.releaseFiles(binding, paths)),
  )
  server.registerTool(
    'report_progress',
    { description: 'Report progress of this task, 0..1, with an optional message.', inputSchema: toolArguments.reportProgress },
    ({ fraction, message }) => guard(() => runTools.reportProgress(binding, fraction, message)),
  )
  server.registerTool('log', { description: "Write a line to this task's log.", inputSchema: toolArguments.log }, ({ message }) => guard(() => runTools.log(binding, message)))
  server.registerTool(
    'scratchpad_read',
    {
      description:
        "Read the run's shared scratchpad, oldest first, one page at a time: notes { taskId, at, text } " +
        'from position `since` (default 0), at most `limit` (default 100) and 256 KB of text; ' +
        'pass the returned `next` as `since` for the following page (no `next`: the end).',
      inputSchema: toolArguments.scratchpadRead,
    },
    ({ since, limit }) => guard(() => runTools.scratchpadRead(binding, since, limit)),
  )
  server.registerTool('scratchpad_append', { description: "Add a note to the run's shared scratchpad.", inputSchema: toolArguments.scratchpadAppend }, ({ text: note }) =>
    guard(() => runTools.scratchpadAppend(binding, note)),
  )
  server.registerTool(
    'add_tasks',
    {
      description:
        'Add tasks to the running plan (same fields as plan tasks; dependsOn may name existing or new ids). Invalid additions add nothing. ' +
        'With wait: true, then wait for them like wait_tasks (timeout in seconds, default and most 3600).',
      inputSchema: toolArguments.addTasks,
    },
    ({ tasks, wait, timeout }) => guard(() => runTools.addTasks(binding, tasks, wait, timeout)),
  )
  server.registerTool(
    'wait_tasks',
    {
      description:
        'Wait until tasks you added with add_tasks (or tasks they added) have all ended, or `timeout` seconds (default and most 3600) ran out; ' +
        'answers each task\'s state, output (text, at most 16000 characters) and error. You hold no slot of the run while you wait.',
      inputSchema: toolArguments.waitTasks,
    },
    ({ ids, timeout }) => guard(() => runTools.waitTasks(binding, ids, timeout)),
  )
  server.registerTool(
    'send_message',
    { description: 'Send a message to another task of this run, by its id; it reads it with read_messages.', inputSchema: toolArguments.sendMessage },
    ({ to, text: message }) => guard(() => runTools.sendMessage(binding, to, message)),
  )
  server.registerTool(
    'read_messages',
    {
      description:
        'Read the messages other tasks sent you, oldest first, one page at a time: from position `since` (default 0), at most `limit` (default 100); ' +
        'pass the returned `next` as `since` for the following page (no `next`: the end).',
      inputSchema: toolArguments.readMessages,
    },
    ({ since, limit }) => guard(() => runTools.readMessages(binding, since, limit)),
  )
  return server
}

/**
 * The body as text, or undefined once it is over MAX_BODY (by its Content-Length, or while
 * reading): the rest is read and dropped, so the client gets its 413 instead of a reset.
 */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let size = 0
    let over = Number(req.headers['content-length'] ?? 0) > MAX_BODY
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) over = true
      if (!over) chunks.push(chunk)
      // Drained to answer 413, but not forever.
      else if (size > DRAIN_LIMIT) req.destroy()
    })
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks).toString('utf8')))
    req.on('close', () => resolve(undefined))
    req.on('error', reject)
  })
}

/** How deep JSON text nests (brackets outside strings), counting no further than `limit + 1`. */
export function nestingDepth(text: string, limit: number): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return deepest
}

function end(res: ServerResponse, status: number, message: string, close = false): void {
  const headers = { 'content-type': 'application/json', ...(close ? { connection: 'close' } : {}) }
  res.writeHead(status, headers).end(JSON.stringify({ error: message }))
}
