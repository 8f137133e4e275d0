/**
 * Measures troupe driving the REAL `claude` (scripts/install-clis.sh) against the scripted
 * Messages API (test/helpers/model-servers/anthropic.ts). Not a test: figures for a human.
 *
 *   npx tsx scripts/measure-claude.ts [rounds=2]
 *
 * - spawn → first model request, per session (troupe's task start to the server's first main request)
 * - peak RSS of one session's process group (the executor's sampler)
 * - troupe's added time per session: one task through troupe vs `claude -p` spawned alone, same server
 * - makespan of 4 parallel sessions, governor on (defaults) vs off
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Plan } from '../src/runtime/plan/plan.ts'
import { createRuntime } from '../src/runtime/runtime.ts'
import { claudeEnv, startAnthropicServer } from '../test/helpers/model-servers/anthropic.ts'
import { realCliPath } from '../test/helpers/real-clis.ts'

const claude = realCliPath('claude-code')
if (claude === undefined) throw new Error('run scripts/install-clis.sh first')
const rounds = Number(process.argv[2] ?? 2)
const root = mkdtempSync(join(tmpdir(), 'troupe-measure-claude-'))
// Three model calls per session, each streamed over ~1.5 s (15 events × 100 ms): a session that mostly waits on its model.
const server = await startAnthropicServer(({ turn }) =>
  turn < 2
    ? { text: 'x'.repeat(2000), toolUses: [{ name: 'Glob', input: { pattern: '*' } }], delayMs: 100 }
    : { text: 'done', delayMs: 100 },
)
const env = claudeEnv(mkdtempSync(join(root, 'home-')), server.url)
const cwd = mkdtempSync(join(root, 'cwd-'))

interface Measured {
  makespanMs: number
  firstRequestMs: number[]
  peakRssMb: number[]
  sessionMs: number[]
}

async function troupeRun(ids: string[], governor: boolean): Promise<Measured> {
  const governorOff = governor ? {} : { governor: { enabled: false } }
  const runtime = createRuntime({ config: { maxParallel: 4, checkpoint: { enabled: false }, ...governorOff } })
  const started = new Map<string, number>()
  const tasks = ids.map((id) => ({ id, agent: 'a', retries: 0, input: { prompt: id } }))
  const plan = { name: 'measure', agents: { a: { kind: 'claude-code', bin: claude, cwd, env } }, tasks } as Plan
  const t0 = Date.now()
  const run = runtime.run(plan)
  run.on('task:state', (e) => {
    if (e.state === 'RUNNING') started.set(e.taskId, e.at)
  })
  const result = await run.result
  const makespanMs = Date.now() - t0
  const demand = runtime.agentDemand().a
  await runtime.close()
  const firstRequestMs = ids.map((id) => server.mainRequests(id)[0]!.at - started.get(id)!)
  // The governor's measurement of the session's process group (peak RSS; CPU in the steady state).
  const peakRssMb = [demand?.memoryMb ?? NaN]
  const mode = governor ? 'on' : 'off'
  if (demand !== undefined) console.error(`demand after ${ids.length} session(s), governor ${mode}: ${JSON.stringify(demand)}`)
  const sessionMs = ids.map((id) => result.tasks[id]!.durationMs ?? NaN)
  for (const id of ids) {
    const task = result.tasks[id]
    if (task?.state !== 'COMPLETED') throw new Error(`${id}: ${task?.state} ${task?.error?.message}`)
  }
  return { makespanMs, firstRequestMs, peakRssMb, sessionMs }
}

function claudeAlone(prompt: string): Promise<{ ms: number; firstRequestMs: number }> {
  const t0 = Date.now()
  const args = ['-p', '--output-format', 'stream-json', '--verbose', '--permission-mode', 'acceptEdits']
  const child = spawn(claude!, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'ignore', 'ignore'] })
  child.stdin.end(prompt)
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`claude exited ${code}`))
      resolve({ ms: Date.now() - t0, firstRequestMs: server.mainRequests(prompt)[0]!.at - t0 })
    }),
  )
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const alone: number[] = []
const aloneFirst: number[] = []
const through: number[] = []
const throughFirst: number[] = []
const rss: number[] = []
const on: number[] = []
const off: number[] = []
for (let r = 0; r < rounds; r++) {
  const a = await claudeAlone(`alone-${r}`)
  alone.push(a.ms)
  aloneFirst.push(a.firstRequestMs)
  const one = await troupeRun([`one-${r}`], true)
  through.push(one.makespanMs)
  throughFirst.push(...one.firstRequestMs)
  rss.push(...one.peakRssMb)
  // Alternate the order, so load drift on the shared machine hits both alike.
  const ids = (tag: string) => [1, 2, 3, 4].map((i) => `${tag}-${r}-${i}`)
  if (r % 2 === 0) {
    on.push((await troupeRun(ids('on'), true)).makespanMs)
    off.push((await troupeRun(ids('off'), false)).makespanMs)
  } else {
    off.push((await troupeRun(ids('off'), false)).makespanMs)
    on.push((await troupeRun(ids('on'), true)).makespanMs)
  }
}
const figures = { rounds, claudeAloneMs: alone, claudeAloneFirstRequestMs: aloneFirst, troupeOneSessionMs: through }
const more = { troupeFirstRequestMs: throughFirst, peakRssMb: rss, governorOnMakespanMs: on, governorOffMakespanMs: off }
console.log(JSON.stringify({ ...figures, ...more }))
console.log(
  `median: claude alone ${median(alone)} ms (first request ${median(aloneFirst)} ms); ` +
    `through troupe ${median(through)} ms (first request ${median(throughFirst)} ms) → ` +
    `troupe adds ${median(through) - median(alone)} ms; ` +
    `peak RSS ${median(rss)} MB; 4 parallel: governor on ${median(on)} ms vs off ${median(off)} ms ` +
    `(ratio ${(median(on) / median(off)).toFixed(2)})`,
)
await server.close()
rmSync(root, { recursive: true, force: true })
