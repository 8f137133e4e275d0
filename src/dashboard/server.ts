import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { TroupeError, describeValue, isTroupeError } from '../runtime/core/errors.ts'
import type { Run } from '../runtime/run.ts'
import type { Runtime } from '../runtime/runtime.ts'
import type { GovernorThresholds } from '../monitor/governor-monitor.ts'
import { Monitor } from '../monitor/monitor.ts'
import { EventStream } from './event-stream.ts'
import { readAsset } from './read-asset.ts'

/** The files the dashboard serves: nothing else is reachable, whatever the path says. */
const ASSETS: Readonly<Record<string, { readonly file: Parameters<typeof readAsset>[0]; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/styles.css': { file: 'styles.css', type: 'text/css; charset=utf-8' },
}

const MAX_BODY_BYTES = 1024

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; style-src 'self'; img-src 'self' data:",
} as const

export interface DashboardOptions {
  /** 0 picks a free port. @default 0 */
  readonly port?: number
  /** Interface to bind. Anything but loopback exposes the run's control to the network. @default '127.0.0.1' */
  readonly host?: string
  /** Governor thresholds shown with the gauges. @default the runtime's config.governor */
  readonly thresholds?: GovernorThresholds
}

/** A running dashboard. */
export interface Dashboard {
  /** Where to point a browser, e.g. `http://127.0.0.1:4700/`. */
  readonly url: string
  /** Ends the live streams and stops the server. */
  close(): Promise<void>
}

/**
 * Serves a live dashboard of a runtime (every run on it, and its governor) or of one run:
 * agent cards, the dependency graph, a timeline over worker slots, governor gauges,
 * utilisation and speedup, and a control for the run's maxParallel. Updates stream over
 * Server-Sent Events at `/events`; `/api/snapshot` returns the same data once.
 *
 * Binds loopback unless `host` says otherwise, and answers only requests addressed to the
 * host it serves (a guard against DNS rebinding).
 *
 * @example
 * const runtime = createRuntime()
 * const dashboard = await startDashboard(runtime, { port: 4700 })
 * console.log(`watch at ${dashboard.url}`)
 */
export async function startDashboard(source: Runtime | Run, options: DashboardOptions = {}): Promise<Dashboard> {
  const port = options.port ?? 0
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected \`port\` to be an integer from 0 to 65535, got ${describeValue(port)}`)
  }
  const host = options.host ?? '127.0.0.1'
  const assets = new Map(Object.entries(ASSETS).map(([path, a]) => [path, { body: readAsset(a.file), type: a.type }]))
  const monitor = new Monitor(source, options.thresholds ? { thresholds: options.thresholds } : {})
  const streams = new Set<EventStream>()
  let allowedHosts: ReadonlySet<string> | undefined

  const server = createServer((req, res) => {
    try {
      route(req, res)
    } catch (error) {
      send(res, 500, 'text/plain; charset=utf-8', `Internal error: ${error instanceof Error ? error.message : String(error)}`)
    }
  })

  function route(req: IncomingMessage, res: ServerResponse): void {
    if (allowedHosts && !allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      return send(res, 421, 'text/plain; charset=utf-8', 'Misdirected request: unexpected Host header')
    }
    const path = safePath(req.url ?? '/')
    if (path === undefined) return send(res, 400, 'text/plain; charset=utf-8', 'Bad request path')
    if (req.method === 'POST') {
      const match = /^\/api\/runs\/([\w.-]{1,128})\/max-parallel$/.exec(path)
      if (match) return setMaxParallel(req, res, match[1]!)
      return send(res, 404, 'text/plain; charset=utf-8', 'Not found')
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed')
    if (path === '/events') return openStream(req, res)
    if (path === '/api/snapshot') return send(res, 200, 'application/json', JSON.stringify(monitor.snapshot()))
    const asset = assets.get(path)
    if (asset === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'Not found')
    send(res, 200, asset.type, req.method === 'HEAD' ? '' : asset.body)
  }

  function openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' })
    const stream = new EventStream(monitor, res)
    streams.add(stream)
    req.on('close', () => {
      stream.close()
      streams.delete(stream)
    })
  }

  function setMaxParallel(req: IncomingMessage, res: ServerResponse, runId: string): void {
    // A JSON content type forces a CORS preflight, so other origins cannot drive this.
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return send(res, 415, 'application/json', JSON.stringify({ code: 'ERR_ARGUMENT_INVALID', message: 'Expected a JSON body' }))
    }
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
      if (body.length > MAX_BODY_BYTES) req.destroy()
    })
    req.on('end', () => {
      const run = monitor.run(runId)
      if (run === undefined) return send(res, 404, 'application/json', JSON.stringify({ code: 'ERR_ARGUMENT_INVALID', message: `No run "${runId}"` }))
      try {
        const value = (JSON.parse(body) as { maxParallel?: unknown }).maxParallel
        run.setMaxParallel(value as number)
        send(res, 200, 'application/json', JSON.stringify({ runId, maxParallel: run.maxParallel }))
      } catch (error) {
        const code = isTroupeError(error) ? error.code : 'ERR_ARGUMENT_INVALID'
        send(res, 400, 'application/json', JSON.stringify({ code, message: error instanceof Error ? error.message : String(error) }))
      }
    })
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    monitor.close()
    const code = (error as NodeJS.ErrnoException).code
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Cannot serve the dashboard on ${host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use; pick another with --dashboard PORT' : (error as Error).message}`, { cause: error })
  }
  const address = server.address() as AddressInfo
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address
  if (isLoopback(address.address)) {
    allowedHosts = new Set([`${hostInUrl}:${address.port}`, `localhost:${address.port}`, `127.0.0.1:${address.port}`, `[::1]:${address.port}`])
  }
  let closing: Promise<void> | undefined
  return {
    url: `http://${hostInUrl}:${address.port}/`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const stream of streams) stream.close()
        streams.clear()
        monitor.close()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}

/**
 * The request path, decoded, or undefined when it is malformed or tries to leave the
 * root (`..`, backslashes, NUL), in any encoding.
 */
export function safePath(url: string): string | undefined {
  const raw = url.split('?', 1)[0]!
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    return undefined
  }
  if (!decoded.startsWith('/') || decoded.includes('\\') || decoded.includes('\0') || decoded.split('/').includes('..')) return undefined
  return decoded
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1'
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent) return void res.end()
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
