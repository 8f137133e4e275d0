import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { survivors } from '../../../../src/bench/survivors.ts'
import { isAlive, readProc } from '../../../../src/runtime/execution/processes/process-tree.ts'
import { createRuntime, type Plan } from '../../../../src/index.ts'
import { CLI_ENTRY } from '../../../helpers/cli.ts'
import { exited, until } from '../../../helpers/journal-file.ts'
import { startRedis, type TestRedis } from '../../../helpers/redis-server.ts'

/** A SIGKILLed `troupe worker` leaves none of its agents' processes running (issue 21 item 1). */

const TSX = import.meta.resolve('tsx')
const root = join(import.meta.dirname, '..', '..', '..', '..')
let redis: TestRedis
// Jobs are signed (docs/security.md): the coordinator here and the worker share the secret.
process.env.TROUPE_SECRET = 'containment-test-secret-0123456789'

beforeAll(async () => {
  redis = await startRedis()
}, 60_000)

afterAll(async () => {
  await redis?.stop()
})

describe('kill -9 of troupe worker', () => {
  it('its agents\' processes (a sleep, a bash tree) are gone within 2 s', { timeout: 120_000 }, async () => {
    const mark = `worker-${Math.random().toString(36).slice(2)}`
    const plan = {
      name: 'worker-kill',
      agents: { sleeper: { kind: 'command', run: ['sleep', '30'] }, tree: { kind: 'command', run: ['bash', '-c', 'sleep 30 & sleep 30 & wait'] } },
      tasks: [
        { id: 'sleeper', agent: 'sleeper', retries: 0 },
        { id: 'tree', agent: 'tree', retries: 0 },
      ],
    } as Plan
    // A worker runs only the agents it can check locally: the plan's, given with --plan.
    const planFile = join(mkdtempSync(join(tmpdir(), 'troupe-worker-kill-')), 'plan.json')
    writeFileSync(planFile, JSON.stringify(plan))
    const worker = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'worker', '--backend', redis.url, '--concurrency', '2', '--name', 'doomed', '--plan', planFile], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', TROUPE_MARK: mark },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const exit = exited(worker)
    let err = ''
    await new Promise<void>((resolve, reject) => {
      worker.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString()
        if (err.includes('taking attempts')) resolve()
      })
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${err}`)))
    })
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false }, maxParallel: 2 }, backend: redis.url })
    await runtime.ready()
    const run = runtime.run(plan)
    await until(() => survivors(mark).filter(({ pid }) => pid !== worker.pid).length >= 4, 'both agents to run on the worker', 60_000)
    const agents = survivors(mark).flatMap(({ pid }) => (pid === worker.pid ? [] : [{ pid, startTicks: readProc(pid)!.startTicks }]))
    worker.kill('SIGKILL')
    await exit
    // Gone without anyone's help (no resume, no clean): the supervisors saw the worker's pipe close.
    await until(() => !agents.some(isAlive), 'the agents to be gone', 10_000)
    // The coordinator's side of a dead worker (re-delivery) is not what this test checks.
    void run.cancel('test over')
    await Promise.race([runtime.close({ force: true }), new Promise((resolve) => setTimeout(resolve, 5_000))])
  })
})
