import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
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
    let body: unknown
    try {
      body = JSON.parse(await readBody(req))
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

/** One MCP server with the seven run tools, bound to an attempt. */
function toolServer({ McpServer, toolArguments }: Sdk, binding: ToolBinding): McpServer {
  const server = new McpServer({ name: 'troupe', version: '1' })
  const text = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }], structuredContent: value as Record<string, unknown> })
  const guard = async (fn: () => unknown) => {
    try {
      return text(await fn())
    } catch (error) {
      return { content: [{ type: 'text' as const, text: (error as Error).message }], isError: true }
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
  server.registerTool('scratchpad_read', { description: "Read the run's shared scratchpad: every note { taskId, at, text }, oldest first." }, () => guard(() => runTools.scratchpadRead(binding)))
  server.registerTool('scratchpad_append', { description: "Add a note to the run's shared scratchpad.", inputSchema: toolArguments.scratchpadAppend }, ({ text: note }) =>
    guard(() => runTools.scratchpadAppend(binding, note)),
  )
  server.registerTool(
    'add_tasks',
    { description: 'Add tasks to the running plan (same fields as plan tasks; dependsOn may name existing or new ids). Invalid additions add nothing.', inputSchema: toolArguments.addTasks },
    ({ tasks }) => guard(() => runTools.addTasks(binding, tasks)),
  )
  return server
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) {
        reject(new Error(`request body over ${MAX_BODY} bytes`))
        req.destroy()
      } else chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function end(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: message }))
}
