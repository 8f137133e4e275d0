import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { CLI_ENTRY } from '../../../helpers/cli.ts'
import { startRedis, type TestRedis } from '../../../helpers/redis-server.ts'

const TSX = import.meta.resolve('tsx')
// The coordinator (this process) signs jobs with it; the worker processes inherit it and check them.
process.env.TROUPE_SECRET = 'test-secret-0123456789abcdef'
const root = join(import.meta.dirname, '..', '..', '..', '..')
const whoami = join(root, 'test', 'fixtures', 'agents', 'whoami.mjs')
let redis: TestRedis | undefined
let worker: ChildProcess | undefined

afterAll(async () => {
  worker?.kill('SIGKILL')
  await redis?.stop()
})

describe('Redis backend: Redis restarts mid-run', () => {
  it('completes a run whose Redis is killed and restarted (its data lost) mid-run, instead of hanging', async () => {
    redis = await startRedis()
    const port = redis.port
    worker = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'worker', '--backend', redis.url, '--concurrency', '2', '--name', 'survivor'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    await new Promise<void>((resolve) => worker!.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('taking attempts') && resolve()))
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, maxParallel: 2 }, backend: redis.url })
    const run = runtime.run({ name: 'restart', tasks: Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, agent: whoami, input: { ms: 300 } })) })
    // Kill Redis (its data goes with it: no persistence) while tasks are in flight, then start it again on the same port.
    await new Promise((resolve) => setTimeout(resolve, 700))
    await redis.stop()
    await new Promise((resolve) => setTimeout(resolve, 500))
    redis = await startRedis(port)
    const result = await run.result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(result.totals.completed).toBe(8)
  }, 90_000)
})
