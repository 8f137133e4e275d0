import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Queue, type ConnectionOptions } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseRedisUrl, redisOptions } from '../../../../src/runtime/execution/redis/connection.ts'
import { signJob } from '../../../../src/runtime/execution/redis/job-signature.ts'
import { PREFIX, QUEUE, completionKey, eventsChannel } from '../../../../src/runtime/execution/redis/protocol.ts'
import type { AttemptJob, AttemptJobResult } from '../../../../src/runtime/execution/redis/protocol.ts'
import type { AttemptRequest } from '../../../../src/runtime/execution/executor.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { runCli } from '../../../helpers/cli.ts'
import { freePort, startRedis, type TestRedis } from '../../../helpers/redis-server.ts'
import { startTroupeWorker } from '../../../helpers/troupe-worker.ts'

/** Regression (#22.2): any job written into Redis ran on every `troupe worker` — any command, any module path. */

const root = join(import.meta.dirname, '..', '..', '..', '..')
const marker = join(root, 'test', 'fixtures', 'agents', 'marker.mjs')
const SECRET = 'trust-test-secret-0123456789'
const quiet = { governor: { enabled: false }, checkpoint: { enabled: false } } as const

let redis: TestRedis
const children: ChildProcess[] = []

function startWorker(url: string, args: readonly string[], cwd = root, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  return startTroupeWorker(url, children, { args, cwd, env: { TROUPE_SECRET: SECRET, ...env } })
}

function request(runId: string, agent: AttemptRequest['agent'], input: unknown, baseDir: string): AttemptRequest {
  const none = { model: undefined, runDir: undefined, workspace: undefined, port: undefined }
  const limits = { timeoutMs: 10_000, graceMs: 100 }
  return { runId, taskId: 'a', attempt: 1, input, dependencies: {}, baseDir, agent, ...limits, ...none } as AttemptRequest
}

/** A directory with plan.json: one marker task that appends to `m` there. */
function markerPlan(prefix: string): string {
  const cwd = mkdtempSync(join(tmpdir(), prefix))
  const tasks = [{ id: 'm', agent: marker, input: { file: join(cwd, 'm') } }]
  writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'one', tasks }))
  return cwd
}

/** A command agent's definition as a job carries it. */
const shell = { kind: 'command', cwd: undefined, env: {}, output: 'text', executable: '/bin/sh' } as const

/** Writes a job straight into Redis, as someone with access to it could, and waits for a worker's answer. */
async function forge(url: string, jobId: string, job: AttemptJob): Promise<AttemptJobResult> {
  const connection = redisOptions(parseRedisUrl(url)) as ConnectionOptions
  const queue = new Queue(QUEUE, { connection, prefix: PREFIX })
  const added = await queue.add('a', job, { jobId })
  // Polled, not awaited through QueueEvents: its stream read can start after a fast job completed.
  while ((await added.getState()) !== 'completed') await new Promise((resolve) => setTimeout(resolve, 50))
  const value = (await queue.getJob(jobId))!.returnvalue
  await queue.close()
  return value
}

beforeAll(async () => {
  redis = await startRedis()
}, 30_000)

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await redis?.stop()
})

describe('Redis trust boundary: forged jobs', () => {
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'troupe-trust-'))
    // The worker's plan defines one command agent, `ok`, and the marker module.
    const agents = { ok: { kind: 'command', run: ['echo', 'fine'] }, mark: marker }
    const tasks = [{ id: 'x', agent: 'ok' }, { id: 'y', agent: 'mark' }]
    writeFileSync(join(dir, 'plan.json'), JSON.stringify({ name: 'w', agents, tasks }))
    await startWorker(redis.url, ['--plan', join(dir, 'plan.json'), '--name', 'planned'], dir)
  }, 60_000)

  const markerJob = (file: string, runId: string): AttemptJob => ({
    request: request(runId, { kind: 'module', name: 'mark', moduleUrl: pathToFileURL(marker).href }, { file }, dir),
    module: { relativePath: marker, sha256: '' },
  })

  it('refuses a job without a signature with ERR_JOB_REFUSED; nothing runs', async () => {
    const file = join(dir, 'unsigned')
    const value = await forge(redis.url, 'unsigned.a.1', markerJob(file, 'unsigned'))
    expect(!value.result.ok && value.result.error.code).toBe('ERR_JOB_REFUSED')
    expect(!value.result.ok && value.result.error.message).toMatch(/carries no signature/)
    expect(existsSync(file)).toBe(false)
  }, 30_000)

  it('refuses a job signed with another secret with ERR_JOB_REFUSED; nothing runs', async () => {
    const file = join(dir, 'bad-signature')
    const value = await forge(redis.url, 'badsig.a.1', signJob('another-secret-0123456789', 'badsig.a.1', markerJob(file, 'badsig')))
    expect(!value.result.ok && value.result.error.code).toBe('ERR_JOB_REFUSED')
    expect(!value.result.ok && value.result.error.message).toMatch(/does not match/)
    expect(existsSync(file)).toBe(false)
  }, 30_000)

  it('refuses a signed job whose request was changed after signing; nothing runs', async () => {
    const file = join(dir, 'changed')
    const signed = signJob(SECRET, 'changed.a.1', markerJob(join(dir, 'elsewhere'), 'changed'))
    const value = await forge(redis.url, 'changed.a.1', { ...signed, request: { ...signed.request, input: { file } } })
    expect(!value.result.ok && value.result.error.code).toBe('ERR_JOB_REFUSED')
    expect(existsSync(file)).toBe(false)
  }, 30_000)

  it('refuses a signed job naming a command the worker\'s plan does not define; nothing runs', async () => {
    const file = join(dir, 'touched')
    const agent = { ...shell, name: 'evil', run: `touch ${file}` }
    const value = await forge(redis.url, 'evil.a.1', signJob(SECRET, 'evil.a.1', { request: request('evil', agent, null, dir) }))
    expect(!value.result.ok && value.result.error.code).toBe('ERR_AGENT_MISMATCH')
    expect(!value.result.ok && value.result.error.message).toMatch(/not defined in this worker's plan/)
    expect(existsSync(file)).toBe(false)
  }, 30_000)

  it('refuses a signed job giving a plan agent\'s name another command; nothing runs', async () => {
    const file = join(dir, 'renamed')
    const agent = { ...shell, name: 'ok', run: `touch ${file}` }
    const value = await forge(redis.url, 'renamed.a.1', signJob(SECRET, 'renamed.a.1', { request: request('renamed', agent, null, dir) }))
    expect(!value.result.ok && value.result.error.code).toBe('ERR_AGENT_MISMATCH')
    expect(!value.result.ok && value.result.error.message).toMatch(/defined differently/)
    expect(existsSync(file)).toBe(false)
  }, 30_000)

  it('runs a plan\'s command agent on a worker started with that plan', async () => {
    const previous = process.env.TROUPE_SECRET
    process.env.TROUPE_SECRET = SECRET
    try {
      const runtime = createRuntime({ config: quiet, backend: redis.url })
      const plan = { name: 'w', agents: { ok: { kind: 'command', run: ['echo', 'fine'] } }, tasks: [{ id: 'x', agent: 'ok' }] } as const
      const result = await runtime.run(plan, { runId: 'planned-ok' }).result
      await runtime.close()
      expect(result.tasks.x).toMatchObject({ state: 'COMPLETED', worker: 'planned', output: { stdout: 'fine\n' } })
    } finally {
      process.env.TROUPE_SECRET = previous
    }
  }, 60_000)
})

describe('Redis trust boundary: the worker\'s own settings', () => {
  it('refuses to start without a secret unless --insecure (exit 2, ERR_ARGUMENT_INVALID)', async () => {
    const result = await runCli(['worker', '--backend', redis.url], { env: { TROUPE_SECRET: '', TROUPE_SECRET_FILE: '' } })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('ERR_ARGUMENT_INVALID')
    expect(result.stderr).toContain('TROUPE_SECRET')
  }, 30_000)
})

describe('Redis with a password (--requirepass)', () => {
  let secured: TestRedis
  const password = 'p@ss/word:1'
  beforeAll(async () => {
    secured = await startRedis(undefined, ['--requirepass', password])
  }, 30_000)
  afterAll(async () => {
    await secured?.stop()
  })
  const withPassword = () => `redis://:${encodeURIComponent(password)}@127.0.0.1:${secured.port}`

  it('runs a plan through a worker when both use the password URL', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'troupe-auth-'))
    await startWorker(withPassword(), ['--name', 'authed'])
    const tasks = [{ id: 'm', agent: marker, input: { file: join(cwd, 'marks') } }]
    writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'auth', tasks }))
    const env = { TROUPE_SECRET: SECRET, REDIS_URL: withPassword() }
    const result = await runCli(['run', 'plan.json', '--json', '--quiet'], { cwd, env })
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'completed', tasks: { m: { state: 'COMPLETED', worker: 'authed' } } })
  }, 90_000)

  it('exits 2 with ERR_BACKEND_UNAVAILABLE without the password, before any task starts', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'troupe-auth-'))
    const tasks = [{ id: 'm', agent: marker, input: { file: join(cwd, 'marks') } }]
    writeFileSync(join(cwd, 'plan.json'), JSON.stringify({ name: 'noauth', tasks }))
    const backend = `redis://127.0.0.1:${secured.port}`
    const result = await runCli(['run', 'plan.json', '--backend', backend], { cwd, env: { TROUPE_SECRET: SECRET } })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('ERR_BACKEND_UNAVAILABLE')
    expect(result.stderr).not.toContain(password)
    expect(existsSync(join(cwd, 'marks'))).toBe(false)
  }, 60_000)

  it('never shows the password in messages: the URL is masked', () => {
    expect(parseRedisUrl(withPassword()).url).toBe(`redis://:***@127.0.0.1:${secured.port}`)
  })
})

describe('Redis backend with a stale worker', () => {
  let own: TestRedis
  afterAll(async () => {
    await own?.stop()
  })

  it('leaves the jobs a stale worker cannot run to a good one: every task completes there, none fails', async () => {
    own = await startRedis()
    // The stale checkout has another version of the marker agent at the same path.
    const stale = mkdtempSync(join(tmpdir(), 'troupe-stale-'))
    mkdirSync(join(stale, 'test', 'fixtures', 'agents'), { recursive: true })
    writeFileSync(join(stale, 'test', 'fixtures', 'agents', 'marker.mjs'), 'export default async () => "old version"\n')
    await startWorker(own.url, ['--name', 'stale'], stale)
    await startWorker(own.url, ['--name', 'good'])
    const marks = join(mkdtempSync(join(tmpdir(), 'troupe-stale-marks-')), 'marks')
    const previous = process.env.TROUPE_SECRET
    process.env.TROUPE_SECRET = SECRET
    try {
      const runtime = createRuntime({ config: { ...quiet, maxParallel: 4 }, backend: own.url })
      const ids = Array.from({ length: 8 }, (_, i) => `t${i}`)
      const tasks = ids.map((id) => ({ id, agent: marker, input: { file: marks, ms: 50 }, retries: 0 }))
      const result = await runtime.run({ name: 'stale', tasks }).result
      await runtime.close()
      expect(result.status).toBe('completed')
      expect(new Set(Object.values(result.tasks).map((task) => task.worker))).toEqual(new Set(['good']))
    } finally {
      process.env.TROUPE_SECRET = previous
    }
  }, 90_000)
})

describe('Redis over TLS (rediss://)', () => {
  let tls: TestRedis
  let certs: string
  beforeAll(async () => {
    certs = mkdtempSync(join(tmpdir(), 'troupe-tls-'))
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: certs, stdio: 'ignore' })
    const key = ['-newkey', 'rsa:2048', '-nodes']
    ssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=troupe test CA')
    ssl('req', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    writeFileSync(join(certs, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n')
    const ca = ['-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial']
    ssl('x509', '-req', '-in', 'server.csr', ...ca, '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext')
    const port = await freePort()
    const files = ['--tls-cert-file', 'server.crt', '--tls-key-file', 'server.key', '--tls-ca-cert-file', 'ca.crt'].map((arg) =>
      arg.startsWith('--') ? arg : join(certs, arg),
    )
    tls = await startRedis(port, ['--port', '0', '--tls-port', String(port), ...files, '--tls-auth-clients', 'no'])
  }, 60_000)
  afterAll(async () => {
    await tls?.stop()
  })

  it('runs a plan through a worker over TLS when both trust the server\'s CA', async () => {
    const url = `rediss://127.0.0.1:${tls.port}`
    const env = { TROUPE_SECRET: SECRET, NODE_EXTRA_CA_CERTS: join(certs, 'ca.crt') }
    await startWorker(url, ['--name', 'tls'], root, env)
    const cwd = markerPlan('troupe-tls-run-')
    const result = await runCli(['run', 'plan.json', '--backend', url, '--json', '--quiet'], { cwd, env })
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'completed', tasks: { m: { state: 'COMPLETED', worker: 'tls' } } })
  }, 90_000)

  it('refuses a server certificate it cannot verify: ERR_BACKEND_UNAVAILABLE, exit 2', async () => {
    const cwd = markerPlan('troupe-tls-run-')
    const backend = `rediss://127.0.0.1:${tls.port}`
    const result = await runCli(['run', 'plan.json', '--backend', backend], { cwd, env: { TROUPE_SECRET: SECRET } })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('ERR_BACKEND_UNAVAILABLE')
    expect(existsSync(join(cwd, 'm'))).toBe(false)
  }, 60_000)
})

describe('Redis trust boundary: forged answers to the coordinator', () => {
  beforeAll(async () => {
    await startWorker(redis.url, ['--name', 'plain'])
  }, 60_000)

  const withSecret = async <T>(fn: () => Promise<T>): Promise<T> => {
    const previous = process.env.TROUPE_SECRET
    process.env.TROUPE_SECRET = SECRET
    try {
      return await fn()
    } finally {
      process.env.TROUPE_SECRET = previous
    }
  }

  it('refuses a completion record written into Redis by someone without the secret: ERR_JOB_REFUSED, not its output', async () => {
    const client = new Redis(redisOptions(parseRedisUrl(redis.url)))
    await client.set(completionKey('forged-record.t.1'), JSON.stringify({ worker: 'evil', result: { ok: true, output: 'pwned' } }))
    client.disconnect()
    const result = await withSecret(async () => {
      const runtime = createRuntime({ config: quiet, backend: redis.url })
      const tasks = [{ id: 't', agent: marker, input: { file: join(tmpdir(), 'unused') }, retries: 0 }]
      const run = runtime.run({ name: 'forged', tasks }, { runId: 'forged-record' })
      const value = await run.result
      await runtime.close({ force: true })
      return value
    })
    expect(result.tasks.t).toMatchObject({ state: 'FAILED', error: { code: 'ERR_JOB_REFUSED' } })
    expect(result.tasks.t?.output).toBeUndefined()
  }, 60_000)

  it('adds no task for a ctx.spawn call published by someone without the secret', async () => {
    const marks = join(mkdtempSync(join(tmpdir(), 'troupe-forged-spawn-')), 'marks')
    const result = await withSecret(async () => {
      const runtime = createRuntime({ config: quiet, backend: redis.url })
      const tasks = [{ id: 'slow', agent: marker, input: { file: marks, ms: 1_500 } }]
      const run = runtime.run({ name: 'spawned', tasks }, { runId: 'forged-spawn' })
      while (!existsSync(marks)) await new Promise((resolve) => setTimeout(resolve, 20))
      const client = new Redis(redisOptions(parseRedisUrl(redis.url)))
      const call = { type: 'spawn', call: 1, tasks: [{ id: 'evil', agent: marker, input: { file: marks } }], wait: false }
      await client.publish(eventsChannel('forged-spawn.slow.1'), JSON.stringify(call))
      client.disconnect()
      const value = await run.result
      await runtime.close()
      return value
    })
    expect(Object.keys(result.tasks)).toEqual(['slow'])
    expect(readFileSync(marks, 'utf8').split('\n').filter(Boolean)).toEqual(['slow'])
  }, 60_000)
})
