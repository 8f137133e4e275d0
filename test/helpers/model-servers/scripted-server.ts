import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** One request a scripted model server received, for assertions. */
export interface RecordedRequest {
  readonly method: string
  /** Path and query, e.g. `/v1/responses` or `/v1beta/models/m:streamGenerateContent?alt=sse`. */
  readonly path: string
  readonly headers: IncomingHttpHeaders
  /** The JSON body (undefined when it was not JSON). */
  readonly body: Record<string, unknown> | undefined
  /** `performance.now()` when the request arrived. */
  readonly at: number
  /** `Date.now()` when the request arrived (to compare with run events' `at`). */
  readonly receivedAt: number
  /** Whether the script answered it (a model turn), as opposed to a utility request. */
  readonly scripted: boolean
}

/**
 * A fault instead of a model reply:
 * - `status`: an HTTP error (429 with `retryAfterSeconds` → a `retry-after` header);
 * - `stall`: headers and the first event are sent, then nothing until the client gives up
 *   (or `stallMs` passes, after which the connection is dropped);
 * - `drop`: the first `afterEvents` events are sent, then the connection is destroyed.
 */
export type Fault =
  | { readonly fault: 'status'; readonly status: number; readonly retryAfterSeconds?: number; readonly message?: string }
  | { readonly fault: 'stall'; readonly stallMs?: number }
  | { readonly fault: 'drop'; readonly afterEvents?: number }

/** A script: replies in order (then `fallback` for every later turn), or a function of the request (it may wait). */
export type Script<Reply> =
  | readonly (Reply | Fault)[]
  | ((request: RecordedRequest, turn: number) => Reply | Fault | Promise<Reply | Fault>)

export function isFault(reply: object): reply is Fault {
  return 'fault' in reply
}

/** How a provider writes one reply: its SSE events, its error body, the answer to a utility request. */
export interface Provider<Reply> {
  /** Whether the request is a model turn the script answers. */
  isTurn(method: string, path: string): boolean
  /** The SSE frames of one reply (`turn` counts from 0; `request` is the turn's request). */
  events(reply: Reply, turn: number, request: RecordedRequest): string[]
  /** The JSON body of an HTTP error. */
  errorBody(status: number, message: string, retryAfterSeconds: number | undefined): unknown
  /** The answer to a request that is not a turn (status and JSON body). */
  utility(request: RecordedRequest): { status: number; body: unknown }
}

/**
 * An HTTP server on 127.0.0.1 (random port) that plays a model provider from a script: each
 * model turn gets the next scripted reply or fault, every request is recorded. Stalled
 * responses are held open until the client disconnects or the server closes.
 */
export class ScriptedServer<Reply extends object> {
  readonly requests: RecordedRequest[] = []
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #provider: Provider<Reply>
  readonly #script: Script<Reply>
  readonly #fallback: Reply
  #turns = 0
  #port = 0

  constructor(provider: Provider<Reply>, script: Script<Reply>, fallback: Reply) {
    this.#provider = provider
    this.#script = script
    this.#fallback = fallback
    this.#server = createServer((req, res) => void this.#handle(req, res))
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.#port = (this.#server.address() as AddressInfo).port
    return this
  }

  /** `http://127.0.0.1:PORT` */
  get origin(): string {
    return `http://127.0.0.1:${this.#port}`
  }

  /** The requests the script answered (model turns), in order. */
  get turns(): RecordedRequest[] {
    return this.requests.filter((request) => request.scripted)
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer)
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    let body: Record<string, unknown> | undefined
    try {
      body = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : undefined
    } catch {
      body = undefined
    }
    const method = req.method ?? 'GET'
    const path = req.url ?? '/'
    const scripted = this.#provider.isTurn(method, path)
    const request: RecordedRequest = { method, path, headers: req.headers, body, at: performance.now(), receivedAt: Date.now(), scripted }
    this.requests.push(request)
    if (!scripted) {
      const answer = this.#provider.utility(request)
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body))
      return
    }
    const turn = this.#turns++
    const script = this.#script
    const reply = typeof script === 'function' ? await script(request, turn) : (script[turn] ?? this.#fallback)
    if (isFault(reply)) return this.#fault(reply, turn, request, res)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    for (const frame of this.#provider.events(reply, turn, request)) res.write(frame)
    res.end()
  }

  #fault(fault: Fault, turn: number, request: RecordedRequest, res: ServerResponse): void {
    switch (fault.fault) {
      case 'status': {
        const message = fault.message ?? (fault.status === 429 ? 'Rate limit reached (scripted)' : `Scripted error ${fault.status}`)
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds)
        res.writeHead(fault.status, headers).end(JSON.stringify(this.#provider.errorBody(fault.status, message, fault.retryAfterSeconds)))
        return
      }
      case 'stall': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        const first = this.#provider.events(this.#fallback, turn, request)[0]
        if (first !== undefined) res.write(first)
        if (fault.stallMs !== undefined) {
          const timer = setTimeout(() => (this.#timers.delete(timer), res.socket?.destroy()), fault.stallMs)
          this.#timers.add(timer)
        }
        return
      }
      case 'drop': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        for (const frame of this.#provider.events(this.#fallback, turn, request).slice(0, fault.afterEvents ?? 1)) res.write(frame)
        // Let the frames leave before the reset.
        setImmediate(() => res.socket?.destroy())
        return
      }
    }
  }
}
