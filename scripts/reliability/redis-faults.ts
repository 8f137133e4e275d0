/**
 * Redis faults in the middle of a run on the Redis backend (#21.4), at full length: Redis
 * killed and restarted empty, frozen 40 s (SIGSTOP/SIGCONT), down 40 s then back empty. Each
 * round: `troupe run --backend` of 12 marker tasks (3 s each) on two `troupe worker`
 * processes; counts tasks run twice (marker lines), tasks not completed, and runs that hang
 * (no result within 240 s). The short versions are test/runtime/execution/redis/redis-faults.test.ts.
 *
 *   node --import tsx scripts/reliability/redis-faults.ts [rounds=1] [faultSeconds=40]
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startRedis, type TestRedis } from '../../src/bench/redis-server.ts'
import { MARKER, REPO, finished, marks, sleep, startCli, workspace } from './common.ts'

const rounds = Number(process.argv[2] ?? 1)
const faultMs = Number(process.argv[3] ?? 40) * 1000
process.env.TROUPE_SECRET ??= randomBytes(32).toString('hex')

type Fault = (redis: TestRedis) => Promise<TestRedis>
const faults: Record<string, Fault> = {
  'killed, restarted empty': async (redis) => {
    await redis.stop()
    await sleep(500)
    return startRedis(redis.port)
  },
  [`frozen ${faultMs / 1000} s`]: async (redis) => {
    redis.signal('SIGSTOP')
    await sleep(faultMs)
    redis.signal('SIGCONT')
    return redis
  },
  [`down ${faultMs / 1000} s`]: async (redis) => {
    await redis.stop()
    await sleep(faultMs)
    return startRedis(redis.port)
  },
}

const report: Record<string, { rounds: number; ranTwice: number; notCompleted: number; hung: number }> = {}
for (const [name, fault] of Object.entries(faults)) {
  const line = (report[name] = { rounds: 0, ranTwice: 0, notCompleted: 0, hung: 0 })
  for (let round = 0; round < rounds; round++) {
    let redis = await startRedis()
    const dir = workspace('redis')
    const ids = Array.from({ length: 12 }, (_, i) => `t${i}`)
    const tasks = ids.map((id) => ({ id, agent: MARKER, input: { file: join(dir, 'marks.txt'), ms: 3_000 } }))
    writeFileSync(join(dir, 'plan.json'), JSON.stringify({ name: 'faults', maxParallel: 4, tasks }))
    const workers = ['w1', 'w2'].map((name) => startCli(REPO, ['worker', '--backend', redis.url, '--concurrency', '2', '--name', name]))
    await sleep(3_000)
    const run = startCli(dir, ['run', 'plan.json', '--backend', redis.url, '--json', '--quiet'])
    const outcome = finished(run)
    while (marks(dir).length < 2) await sleep(50)
    redis = await fault(redis)
    const timeout = sleep(240_000).then(() => undefined)
    const done = await Promise.race([outcome, timeout])
    line.rounds++
    if (done === undefined) {
      line.hung++
      run.kill('SIGKILL')
    } else {
      const result = JSON.parse(done.stdout || '{"tasks":{}}') as { tasks: Record<string, { state: string }> }
      line.notCompleted += ids.filter((id) => result.tasks[id]?.state !== 'COMPLETED').length
    }
    const runs = marks(dir)
    line.ranTwice += runs.length - new Set(runs).size
    for (const worker of workers) worker.kill('SIGKILL')
    await redis.stop()
    console.log(`${name}, round ${round + 1}: ${JSON.stringify(line)}`)
  }
}
console.log(JSON.stringify(report, null, 2))
