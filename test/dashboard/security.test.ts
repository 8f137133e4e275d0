import { createServer, request } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Broadcast } from '../../src/dashboard/event-stream.ts'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import { Monitor } from '../../src/monitor/monitor.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'

const sleep = fileURLToPath(new URL('../fixtures/agents/sleep.mjs', import.meta.url))
const noop = fileURLToPath(new URL('../fixtures/agents/noop.mjs', import.meta.url))

interface Reply {
  readonly status: number
  readonly body: string
  readonly headers: Record<string, string | string[] | undefined>
}

function call(url: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

const tokenOf = (url: string) => new URL(url).searchParams.get('token') ?? ''
const bearer = (url: string) => ({ authorization: `Bearer ${tokenOf(url)}` })

let runtime: Runtime | undefined
let dashboard: Dashboard | undefined

function newRuntime(): Runtime {
  runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
  return runtime
}

afterEach(async () => {
  await dashboard?.close()
  await runtime?.close({ force: true })
  dashboard = undefined
  runtime = undefined
})

describe('dashboard security', () => {
  it('refuses to be framed (regression: it loaded with its controls inside a cross-origin iframe)', async () => {
    dashboard = await startDashboard(newRuntime())
    const page = await call(dashboard.url, '/', { headers: bearer(dashboard.url) })
    expect(page.status).toBe(200)
    expect(page.headers['x-frame-options']).toBe('DENY')
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
  })

  it('answers 401 to a request without its token (regression: no authentication at all)', async () => {
    dashboard = await startDashboard(newRuntime())
    for (const path of ['/', '/app.js', '/api/snapshot', '/events']) {
      expect({ path, status: (await call(dashboard.url, path)).status }).toEqual({ path, status: 401 })
    }
    expect((await call(dashboard.url, '/api/snapshot', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401)
  })

  it('requires the token on the maxParallel control too', async () => {
    const rt = newRuntime()
    dashboard = await startDashboard(rt)
    const run = rt.run({ name: 'ctl', tasks: [{ id: 's', agent: sleep, input: { ms: 300 } }] }, { runId: 'ctl' })
    await new Promise((resolve) => setImmediate(resolve))
    const body = JSON.stringify({ maxParallel: 5 })
    const denied = await call(dashboard.url, '/api/runs/ctl/max-parallel', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect(denied.status).toBe(401)
    expect(run.maxParallel).toBe(2)
    const allowed = await call(dashboard.url, '/api/runs/ctl/max-parallel', { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(dashboard.url) }, body })
    expect(allowed.status).toBe(200)
    expect(run.maxParallel).toBe(5)
    await run.result
  })

  it('bounds maxParallel like plans: 1e9 is refused with ERR_ARGUMENT_INVALID, the run keeps its value', async () => {
    const rt = newRuntime()
    dashboard = await startDashboard(rt)
    const run = rt.run({ name: 'ctl', tasks: [{ id: 's', agent: sleep, input: { ms: 300 } }] }, { runId: 'ctl-bound' })
    await new Promise((resolve) => setImmediate(resolve))
    const headers = { 'content-type': 'application/json', ...bearer(dashboard.url) }
    const body = JSON.stringify({ maxParallel: 1e9 })
    const refused = await call(dashboard.url, '/api/runs/ctl-bound/max-parallel', { method: 'POST', headers, body })
    expect(refused.status).toBe(400)
    const message = expect.stringContaining('from 1 to 10000, got `1000000000`')
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'ERR_ARGUMENT_INVALID', message })
    expect(run.maxParallel).toBe(2)
    await run.result
  })

  it('gives the page opened with ?token= a SameSite cookie that its own requests then carry', async () => {
    dashboard = await startDashboard(newRuntime())
    const page = await call(dashboard.url, new URL(dashboard.url).pathname + new URL(dashboard.url).search)
    const cookie = String(page.headers['set-cookie'])
    expect(cookie).toMatch(/^troupe_token=[\w-]+; HttpOnly; SameSite=Strict/)
    const asset = await call(dashboard.url, '/app.js', { headers: { cookie: cookie.split(';')[0]! } })
    expect(asset.status).toBe(200)
  })

  it('refuses to bind beyond loopback without an allowed host (regression: --host 0.0.0.0 switched the Host check off)', async () => {
    await expect(startDashboard(newRuntime(), { host: '0.0.0.0' })).rejects.toMatchObject({
      code: 'ERR_ARGUMENT_INVALID',
      message: expect.stringContaining('got host `"0.0.0.0"` (string) and no allowed host'),
    })
  })

  it('keeps the Host check on 0.0.0.0: only the allowed host, with the token, is answered', async () => {
    dashboard = await startDashboard(newRuntime(), { host: '0.0.0.0', allowHosts: ['dash.example'] })
    const { port } = new URL(dashboard.url)
    expect(new URL(dashboard.url).hostname).toBe('dash.example')
    const target = `http://127.0.0.1:${port}/`
    expect((await call(target, '/', { headers: { ...bearer(dashboard.url), host: `attacker.example:${port}` } })).status).toBe(421)
    expect((await call(target, '/', { headers: { ...bearer(dashboard.url), host: `dash.example:${port}` } })).status).toBe(200)
    expect((await call(target, '/', { headers: { host: `dash.example:${port}` } })).status).toBe(401)
  })

  it('caps live connections, refusing more with 503', async () => {
    dashboard = await startDashboard(newRuntime(), { stream: { maxClients: 2 } })
    const open = await Promise.all([openStream(dashboard.url), openStream(dashboard.url)])
    expect((await call(dashboard.url, '/events', { headers: bearer(dashboard.url) })).status).toBe(503)
    for (const s of open) s.destroy()
  })

  it('drops a client that never reads, and keeps serving one that does (regression: 20 idle clients grew memory to 3.6 GB)', async () => {
    const rt = newRuntime()
    const monitor = new Monitor(rt)
    const broadcast = new Broadcast(monitor, { maxBufferedBytes: 256 * 1024, intervalMs: 20 })
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      broadcast.add(res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    // A real client that sends its request and never reads a byte of the answer.
    const idle = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port })
    idle.pause()
    idle.on('error', () => {})
    idle.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n')
    const reader = await openStream(url)
    let received = ''
    reader.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')))
    await waitFor(() => broadcast.clients === 2)

    // Long task ids make every frame large, so the idle client's buffers fill quickly.
    const tasks = Array.from({ length: 2000 }, (_, i) => ({ id: `task-${i}-${'x'.repeat(1000)}`, agent: noop }))
    await rt.run({ name: 'flood', tasks }).result
    expect(broadcast.dropped).toBe(1)
    expect(broadcast.clients).toBe(1)
    await broadcast.close()
    await waitFor(() => received.includes('event: end'))
    expect(received).toContain('"status":"completed"')
    idle.destroy()
    reader.destroy()
    monitor.close()
    await new Promise((resolve) => server.close(resolve))
  })
})

/** An /events stream, as a raw socket (so the test decides whether to read it). */
function openStream(url: string): Promise<import('node:net').Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(`GET /events HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${tokenOf(url)}\r\n\r\n`)
      socket.once('data', () => resolve(socket))
    })
    socket.on('error', reject)
  })
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
}
