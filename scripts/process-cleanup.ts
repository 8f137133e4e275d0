/**
 * Reliability check for process agents: repeats the ways an attempt can be stopped —
 * timeout, cancel, a SIGTERM-ignoring tree past its grace, runtime.close({ force: true }),
 * and `troupe run` interrupted by SIGINT / SIGTERM — and counts the processes left behind
 * (found in /proc by a marker in their environment; every attempt is a shell with two
 * grandchildren). Usage: `npx tsx scripts/process-cleanup.ts [repetitions=50] [case,case…]`.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRuntime, type Plan } from '../src/index.ts'
import { survivors } from '../src/bench/survivors.ts'

const repetitions = Number(process.argv[2] ?? 50)
/** Optional comma-separated case names to run (default: all). */
const only = process.argv[3]?.split(',')
const TREE = 'sleep 100 & sleep 100 & wait'
const STUBBORN = "trap '' TERM; sleep 100 & sleep 100 & wait"
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts')


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
async function until(check: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await sleep(25)
}

const plan = (mark: string, run: string, tasks: number, timeoutMs = 60_000): Plan =>
  ({ name: 'cleanup', agents: { x: { kind: 'command', run, env: { TROUPE_MARK: mark } } }, tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, agent: 'x', retries: 0, timeoutMs })) }) as Plan

const config = { maxParallel: 4, pool: { minThreads: 1, maxThreads: 4 }, cancelGraceMs: 200, governor: { enabled: false }, checkpoint: { enabled: false } }

const cases: Record<string, (mark: string) => Promise<void>> = {
  timeout: async (mark) => {
    const runtime = createRuntime({ config })
    await runtime.run(plan(mark, TREE, 4, 150)).result
    await runtime.close()
  },
  'timeout-stubborn': async (mark) => {
    const runtime = createRuntime({ config })
    await runtime.run(plan(mark, STUBBORN, 4, 150)).result
    await runtime.close()
  },
  cancel: async (mark) => {
    const runtime = createRuntime({ config })
    const run = runtime.run(plan(mark, TREE, 4))
    await until(() => survivors(mark).length === 12)
    await run.cancel('cleanup check')
    await runtime.close()
  },
  'force-close': async (mark) => {
    const runtime = createRuntime({ config: { ...config, cancelGraceMs: 1_000 } })
    void runtime.run(plan(mark, STUBBORN, 4)).result
    await until(() => survivors(mark).length === 12)
    await runtime.close({ force: true })
  },
  ...Object.fromEntries(
    (['SIGINT', 'SIGTERM'] as const).map((signal) => [
      `cli-${signal}`,
      async (mark: string) => {
        const dir = mkdtempSync(join(tmpdir(), 'troupe-cleanup-'))
        writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan(mark, STUBBORN, 2)))
        const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, 'run', 'plan.json', '--quiet'], { cwd: dir, stdio: 'ignore' })
        const exited = new Promise((resolve) => child.on('exit', resolve))
        await until(() => survivors(mark).length === 6, 60_000)
        child.kill(signal)
        await exited
        rmSync(dir, { recursive: true, force: true })
      },
    ]),
  ),
}

let total = 0
for (const [name, run] of Object.entries(cases)) {
  if (only !== undefined && !only.includes(name)) continue
  let left = 0
  const reps = name.startsWith('cli-') ? Math.min(repetitions, 10) : repetitions
  for (let i = 0; i < reps; i++) {
    const mark = randomUUID()
    await run(mark)
    // The grace before SIGKILL is 200 ms (1 s for force-close): wait past it, then count.
    await sleep(name === 'force-close' ? 1200 : 400)
    left += survivors(mark).length
  }
  total += left
  console.log(`${name.padEnd(18)} ${String(reps).padStart(3)} repetitions  ${left} processes left behind`)
}
console.log(`total: ${total} processes left behind`)
process.exitCode = total === 0 ? 0 : 1
