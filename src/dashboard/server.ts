import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { TroupeError, describeValue, isTroupeError } from '../runtime/core/errors.ts'
import { MAX_PARALLEL } from '../runtime/plan/plan.ts'
import { attemptLogFile, runDir } from '../runtime/journal/paths.ts'
import type { Run } from '../runtime/run.ts'
import type { Runtime } from '../runtime/runtime.ts'
import { git } from '../runtime/workspace/git.ts'
import type { GovernorThresholds } from '../monitor/governor-monitor.ts'
import { Monitor } from '../monitor/monitor.ts'
import { readRunMessages, visibleText } from '../monitor/run-facts.ts'
import { Broadcast, type BroadcastOptions } from './event-stream.ts'
import { readAsset } from './read-asset.ts'

/** The files the dashboard serves: nothing else is reachable, whatever the path says. */
const ASSETS: Readonly<Record<string, { readonly file: Parameters<typeof readAsset>[0]; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/styles.css': { file: 'styles.css', type: 'text/css; charset=utf-8' },
}

const MAX_BODY_BYTES = 1024
/** An approval's body: a task id and a reason (cut to 2,000 characters by the run). */
const MAX_APPROVAL_BODY_BYTES = 16 * 1024
/** Most of a diff, an output or a log tail shown to a person approving, in characters. */
const MAX_REVIEW_CHARS = 256 * 1024
const MAX_REVIEW_LOG_CHARS = 16 * 1024
/** Most of a log or diff the drill-down serves, in characters. */
const MAX_LOG_BYTES = 1024 * 1024
/** Attempt log files looked at per task. */
const MAX_ATTEMPT_FILES = 100

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const

const TOKEN_COOKIE = 'troupe_token'

export interface DashboardOptions {
  /** 0 picks a free port. @default 0 */
  readonly port?: number
  /** Interface to bind. Anything but loopback exposes the run's control to the network. @default '127.0.0.1' */
  readonly host?: string
  /** Governor thresholds shown with the gauges. @default the runtime's config.governor */
  readonly thresholds?: GovernorThresholds
  /**
   * Host names (optionally `name:port`) requests may be addressed to, besides loopback
   * names. Required when `host` is not loopback: the Host check guards against DNS rebinding.
   */
  readonly allowHosts?: readonly string[]
  /** The access token every request must carry. @default a random one */
  readonly token?: string
  /** Pacing and bounds of the live stream. */
  readonly stream?: BroadcastOptions
  /** Where the runs' logs are, for the task drill-down. @default a runtime's config.checkpoint.dir */
  readonly checkpointDir?: string
}

/** A running dashboard. */
export interface Dashboard {
  /** Where to point a browser, with the token: e.g. `http://127.0.0.1:4700/?token=…`. */
  readonly url: string
  /** The token every request must carry (`?token=`, the cookie the page gets, or `Authorization: Bearer`). */
  readonly token: string
  /** Sends the final state to every page, ends the live streams and stops the server. */
  close(): Promise<void>
}

/**
 * Serves a live dashboard of a runtime (every run on it, and its governor) or of one run:
 * agent cards, the dependency graph, a timeline over worker slots, governor gauges,
 * utilisation and speedup, and a control for the run's maxParallel. Updates stream over
 * Server-Sent Events at `/events`; `/api/snapshot` returns the same data once.
 *
 * Binds loopback unless `host` says otherwise, answers only requests addressed to the
 * host it serves (a guard against DNS rebinding; beyond loopback, `allowHosts` names it)
 * and carrying its token, and refuses to be framed. Live clients are capped and a client
 * that does not read is dropped.
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
  const allowHosts = (options.allowHosts ?? []).map((h) => h.trim().toLowerCase()).filter((h) => h !== '')
  if (!isLoopback(host) && host !== 'localhost' && allowHosts.length === 0) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `Expected \`allowHosts\` (--allow-host NAME) when the dashboard binds beyond loopback, got host ${describeValue(host)} ` +
        'and no allowed host: name the host browsers will use to reach it',
    )
  }
  const token = options.token ?? randomBytes(18).toString('base64url')
  if (!/^[\w-]{16,128}$/.test(token)) {
    const shown = token.length > 40 ? `${token.slice(0, 40)}…` : token
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `Expected \`token\` to be 16 to 128 letters, digits, \`-\` or \`_\`, got ${describeValue(shown)}`,
    )
  }
  const assets = new Map(Object.entries(ASSETS).map(([path, a]) => [path, { body: readAsset(a.file), type: a.type }]))
  const monitor = new Monitor(source, options.thresholds ? { thresholds: options.thresholds } : {})
  const broadcast = new Broadcast(monitor, options.stream)
  let allowedHosts: ReadonlySet<string> = new Set()

  const server = createServer((req, res) => {
    try {
      route(req, res)
    } catch (error) {
      send(res, 500, 'text/plain; charset=utf-8', `Internal error: ${error instanceof Error ? error.message : String(error)}`)
    }
  })

  function route(req: IncomingMessage, res: ServerResponse): void {
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      return send(res, 421, 'text/plain; charset=utf-8', 'Misdirected request: unexpected Host header')
    }
    const path = safePath(req.url ?? '/')
    if (path === undefined) return send(res, 400, 'text/plain; charset=utf-8', 'Bad request path')
    const given = requestToken(req)
    if (given === undefined || !sameToken(given, token)) {
      const why = 'Unauthorized: open the dashboard with the URL troupe printed (it carries ?token=…)'
      return send(res, 401, 'text/plain; charset=utf-8', why)
    }
    // The page's own requests (styles, script, stream, control) then carry the cookie.
    if (new URL(req.url ?? '/', 'http://x').searchParams.has('token')) {
      res.setHeader('set-cookie', `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`)
    }
    if (req.method === 'POST') {
      const match = /^\/api\/runs\/([\w.-]{1,128})\/max-parallel$/.exec(path)
      if (match) return setMaxParallel(req, res, match[1]!)
      const approval = /^\/api\/runs\/([\w.-]{1,128})\/approval$/.exec(path)
      if (approval) return decide(req, res, approval[1]!)
      return send(res, 404, 'text/plain; charset=utf-8', 'Not found')
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed')
    if (path === '/events') return openStream(res)
    if (path === '/api/snapshot') return send(res, 200, 'application/json', JSON.stringify(monitor.snapshot()))
    if (path === '/api/approval') {
      const query = new URL(req.url ?? '/', 'http://x').searchParams
      void review(query.get('run') ?? '', query.get('task') ?? '').then(
        (body) => {
          const missing = { code: 'ERR_APPROVAL_NOT_AWAITING', message: 'No such task awaiting approval' }
          send(res, body === undefined ? 404 : 200, 'application/json', JSON.stringify(body ?? missing))
        },
        (error: unknown) => send(res, 500, 'application/json', JSON.stringify({ code: 'ERR_ARGUMENT_INVALID', message: String(error) })),
      )
      return
    }
    if (path === '/api/messages') {
      // The run's newest messages between tasks, from its directory: bounded and sanitised (run-facts.ts).
      const runId = new URL(req.url ?? '/', 'http://x').searchParams.get('run') ?? ''
      if (!monitor.snapshot().runs.some((r) => r.runId === runId)) {
        return send(res, 404, 'application/json', JSON.stringify({ code: 'ERR_ARGUMENT_INVALID', message: `No run "${runId}"` }))
      }
      const root = checkpointDir(source, options)
      const body = root === undefined ? { messages: [], omitted: 0 } : readRunMessages(runDir(root, runId))
      return send(res, 200, 'application/json', JSON.stringify(body))
    }
    if (path === '/api/task-log' || path === '/api/task-diff') {
      const query = new URL(req.url ?? '/', 'http://x').searchParams
      const runId = query.get('run') ?? ''
      const taskId = query.get('task') ?? ''
      const found = monitor.snapshot().runs.find((r) => r.runId === runId)?.tasks.find((t) => t.id === taskId)
      if (found === undefined) return send(res, 404, 'text/plain; charset=utf-8', `No task "${taskId}" in run "${runId}"`)
      if (path === '/api/task-log') return send(res, 200, 'text/plain; charset=utf-8', taskLog(runId, taskId))
      void taskDiff(runId, found.workspace?.branch).then((text) => send(res, 200, 'text/plain; charset=utf-8', text))
      return
    }
    const asset = assets.get(path)
    if (asset === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'Not found')
    send(res, 200, asset.type, req.method === 'HEAD' ? '' : asset.body)
  }

  /** A task's whole stored log, attempt after attempt, from the run's directory (the last MAX_LOG_BYTES). */
  function taskLog(runId: string, taskId: string): string {
    const root = checkpointDir(source, options)
    if (root === undefined) return '(no stored logs: the run keeps no journal)'
    const parts: string[] = []
    for (let attempt = 1; attempt <= MAX_ATTEMPT_FILES; attempt++) {
      let text: string
      try {
        text = readFileSync(attemptLogFile(runDir(root, runId), taskId, attempt), 'utf8')
      } catch {
        if (attempt > 1) break
        continue
      }
      parts.push(`── attempt ${attempt} ──\n${text}`)
    }
    const all = parts.join('')
    return all === '' ? '(nothing logged yet)' : all.length > MAX_LOG_BYTES ? `…${all.slice(-MAX_LOG_BYTES)}` : all
  }

  /** What a worktree task's branch changed (`git diff` from where it forked), while the branch exists. */
  async function taskDiff(runId: string, branch: string | undefined): Promise<string> {
    if (branch === undefined) return '(not a worktree task: no diff)'
    const run = monitor.run(runId)
    if (run === undefined) return `(run ${runId} is over: its branch ${branch} is gone unless it ran with --keep-worktrees)`
    const repo = run.plan.baseDir
    const base = await git(repo, ['merge-base', 'HEAD', branch])
    if (base.exitCode !== 0) return `(branch ${branch} no longer exists: merged and removed, or discarded)`
    const diff = await git(repo, ['diff', '--stat', '--patch', base.stdout.trim(), branch])
    const text = diff.exitCode === 0 ? diff.stdout : `git diff failed: ${diff.stderr}`
    return text === '' ? '(no changes)' : text.length > MAX_LOG_BYTES ? `${text.slice(0, MAX_LOG_BYTES)}…` : text
  }

  /**
   * What a person approving task `taskId` looks at: where the gate holds it, its diff (a
   * worktree task's changes against where its branch forked, uncommitted files included), its
   * output and the tail of its log — each bounded; the page shows them as text.
   */
  async function review(runId: string, taskId: string): Promise<Record<string, unknown> | undefined> {
    const run = monitor.run(runId)
    const held = run?.awaitingApproval().find((a) => a.taskId === taskId)
    if (run === undefined || held === undefined) return undefined
    const log = taskLog(runId, taskId)
    const logTail = visibleText(log, MAX_REVIEW_LOG_CHARS + 1, 'tail')
    let diff = '(approval before start: no work to review yet)'
    if (held.review !== undefined) {
      const base = await git(run.plan.baseDir, ['merge-base', 'HEAD', held.review.branch])
      // Untracked files show in the diff as added (intent to add: the merge commits them anyway).
      await git(held.review.workspace, ['add', '--all', '--intent-to-add'])
      const patch = await git(held.review.workspace, ['diff', '--stat', '--patch', base.exitCode === 0 ? base.stdout.trim() : 'HEAD'])
      if (patch.exitCode !== 0) diff = `git diff failed: ${visibleText(patch.stderr, MAX_REVIEW_LOG_CHARS)}`
      else diff = patch.stdout === '' ? '(no changes)' : visibleText(patch.stdout, MAX_REVIEW_CHARS)
    }
    const raw = held.review?.output
    const output = raw === undefined ? undefined : visibleText(typeof raw === 'string' ? raw : safeJson(raw), MAX_REVIEW_CHARS)
    return { runId, taskId, before: held.before, since: held.since, diff, ...(output === undefined ? {} : { output }), logTail }
  }

  function decide(req: IncomingMessage, res: ServerResponse, runId: string): void {
    postToRun(req, res, runId, MAX_APPROVAL_BODY_BYTES, (run, body) => {
      const parsed = JSON.parse(body) as { task?: unknown; decision?: unknown; reason?: unknown }
      const { task, decision, reason } = parsed
      const decided = decision === 'approve' || decision === 'reject'
      if (typeof task !== 'string' || !decided || (reason !== undefined && typeof reason !== 'string')) {
        const expected = '{ task: string, decision: "approve" | "reject", reason?: string }'
        throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected ${expected}, got ${describeValue(parsed)}`)
      }
      run.decide({ id: randomUUID(), task, decision, by: 'dashboard', at: Date.now(), ...(reason === undefined ? {} : { reason }) })
      return { runId, task, decision }
    })
  }

  /**
   * A control request on run `runId`: a JSON body of at most `maxBytes`, handed to `apply`, whose
   * answer is sent as JSON; a thrown error is a 400 with its code. A JSON content type forces a
   * CORS preflight, so other origins cannot drive it.
   */
  function postToRun(
    req: IncomingMessage,
    res: ServerResponse,
    runId: string,
    maxBytes: number,
    apply: (run: NonNullable<ReturnType<typeof monitor.run>>, body: string) => unknown,
  ): void {
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return send(res, 415, 'application/json', JSON.stringify({ code: 'ERR_ARGUMENT_INVALID', message: 'Expected a JSON body' }))
    }
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
      if (body.length > maxBytes) req.destroy()
    })
    req.on('end', () => {
      const run = monitor.run(runId)
      if (run === undefined) {
        return send(res, 404, 'application/json', JSON.stringify({ code: 'ERR_ARGUMENT_INVALID', message: `No run "${runId}"` }))
      }
      try {
        send(res, 200, 'application/json', JSON.stringify(apply(run, body)))
      } catch (error) {
        const code = isTroupeError(error) ? error.code : 'ERR_ARGUMENT_INVALID'
        send(res, 400, 'application/json', JSON.stringify({ code, message: error instanceof Error ? error.message : String(error) }))
      }
    })
  }

  function openStream(res: ServerResponse): void {
    if (broadcast.clients >= (options.stream?.maxClients ?? 16)) {
      return send(res, 503, 'text/plain; charset=utf-8', 'Too many dashboard connections')
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' })
    if (!broadcast.add(res)) res.end()
  }

  function setMaxParallel(req: IncomingMessage, res: ServerResponse, runId: string): void {
    postToRun(req, res, runId, MAX_BODY_BYTES, (run, body) => {
      const value = (JSON.parse(body) as { maxParallel?: unknown }).maxParallel
      // Bounded like a plan's maxParallel: the control must not size the run past what a plan may.
      if (typeof value === 'number' && value > MAX_PARALLEL) {
        const what = `\`maxParallel\` to be an integer from 1 to ${MAX_PARALLEL}`
        throw new TroupeError('ERR_ARGUMENT_INVALID', `Expected ${what}, got ${describeValue(value)}`)
      }
      run.setMaxParallel(value as number)
      return { runId, maxParallel: run.maxParallel }
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
    const why = code === 'EADDRINUSE' ? 'the port is in use; pick another with --dashboard PORT' : (error as Error).message
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Cannot serve the dashboard on ${host}:${port}: ${why}`, { cause: error })
  }
  const address = server.address() as AddressInfo
  const bound = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const named = allowHosts.map((h) => (/:\d+$/.test(h) && !h.endsWith(']') ? h : `${h}:${address.port}`))
  const loopback = [`localhost:${address.port}`, `127.0.0.1:${address.port}`, `[::1]:${address.port}`]
  allowedHosts = new Set([...loopback, ...named, ...(isLoopback(address.address) ? [`${bound}:${address.port}`] : [])])
  const hostInUrl = isLoopback(address.address) ? `${bound}:${address.port}` : (named[0] ?? `${bound}:${address.port}`)
  let closing: Promise<void> | undefined
  return {
    url: `http://${hostInUrl}/?token=${token}`,
    token,
    close() {
      closing ??= (async () => {
        await broadcast.close()
        monitor.close()
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
      })()
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

function requestToken(req: IncomingMessage): string | undefined {
  const query = new URL(req.url ?? '/', 'http://x').searchParams.get('token')
  if (query !== null) return query
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
  if (bearer) return bearer[1]
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, value] = part.trim().split('=', 2)
    if (name === TOKEN_COOKIE && value !== undefined) return value
  }
  return undefined
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Where the runs' logs are: `checkpointDir`, else a runtime's checkpoint.dir when it keeps journals. */
function checkpointDir(source: Runtime | Run, options: DashboardOptions): string | undefined {
  if (options.checkpointDir !== undefined) return resolve(options.checkpointDir)
  if ('config' in source && source.config.checkpoint.enabled) return resolve(source.config.checkpoint.dir)
  return undefined
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value)
  } catch {
    return String(value)
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1'
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent) return void res.end()
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
