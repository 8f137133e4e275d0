// Measures, per real CLI (codex, gemini) against a scripted model server: spawn → first model
// request, peak RSS of the CLI's process tree, and the time troupe adds to a session compared
// with the same CLI run alone (same server, same flags, prompt on stdin, no MCP server).
// "start→CLI process" is troupe's own preparation (MCP binding, the attempt's config dir) plus spawning.
// Run: npx tsx scripts/measure-cli-overhead.ts [runs=5]   (needs scripts/install-clis.sh)
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { codex } from '../src/runtime/execution/processes/codex.ts'
import { gemini } from '../src/runtime/execution/processes/gemini.ts'
import { createRuntime } from '../src/runtime/runtime.ts'
import { startGeminiServer } from '../test/helpers/model-servers/gemini.ts'
import { startResponsesServer } from '../test/helpers/model-servers/openai-responses.ts'
import { realCliPath } from '../test/helpers/real-clis.ts'
import { cliPlan, codexUser, geminiUser } from '../test/runtime/execution/real-cli/harness.ts'

const runs = Number(process.argv[2] ?? 5)
const root = mkdtempSync(join(tmpdir(), 'troupe-measure-'))

/** Sum of RSS (bytes) over every descendant of this process. */
function treeRss(): number {
  const parents = new Map<number, number>()
  const rss = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8')
      const stat = text
        .slice(text.lastIndexOf(')') + 2)
        .split(' ')
      parents.set(Number(name), Number(stat[1]))
      rss.set(Number(name), Number(stat[21]) * 4096)
    } catch {}
  }
  let total = 0
  for (const [pid, bytes] of rss) {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p))
      if (p === process.pid) {
        total += bytes
        break
      }
  }
  return total
}

/** Whether this process has a child process now (cheap: the kernel's children lists of our threads). */
function hasChild(): boolean {
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      if (readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim().length > 0) return true
    } catch {}
  }
  return false
}

/** Runs `fn`, sampling the process tree's RSS, and when the first child process appeared (ms after the start). */
async function sampled<T>(fn: () => Promise<T>): Promise<{ value: T; peakMb: number; spawnedMs: number }> {
  let peak = 0
  const t0 = performance.now()
  let spawnedMs = NaN
  const spawnTimer = setInterval(() => {
    if (hasChild()) {
      spawnedMs = performance.now() - t0
      clearInterval(spawnTimer)
    }
  }, 2)
  const timer = setInterval(() => (peak = Math.max(peak, treeRss())), 25)
  try {
    const value = await fn()
    return { value, peakMb: Math.round(peak / 1024 / 1024), spawnedMs }
  } finally {
    clearInterval(timer)
    clearInterval(spawnTimer)
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const runtime = createRuntime({
  config: { pool: { minThreads: 0, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: false } },
})

for (const kind of ['codex', 'gemini'] as const) {
  const bin = realCliPath(kind)!
  const model = kind === 'codex' ? 'gpt-5-codex' : 'gemini-2.5-pro'
  const rows: Record<string, number[]> = { aloneSpawn: [], aloneFirst: [], aloneTotal: [], aloneRss: [], troupeSpawn: [], troupeFirst: [], troupeTotal: [], troupeRss: [] }
  for (let i = 0; i < runs; i++) {
    for (const mode of ['alone', 'troupe'] as const) {
      const server = kind === 'codex' ? await startResponsesServer([{ text: 'ok' }]) : await startGeminiServer([{ text: 'ok' }])
      const env = kind === 'codex' ? codexUser(root, server as never) : geminiUser(root, server as never)
      const cwd = mkdtempSync(join(root, 'cwd-'))
      const t0 = performance.now()
      const { value: ok, peakMb, spawnedMs } = await sampled(async () => {
        if (mode === 'alone') {
          const parser = kind === 'codex' ? codex : gemini
          const r = await execa(bin, parser.argv(model, [], 'edit'), {
            cwd,
            input: 'say ok',
            env: { ...process.env, ...env },
            reject: false,
          })
          return r.exitCode === 0
        }
        const result = await runtime.run(cliPlan(kind, 'measure', [{ id: 't', prompt: 'say ok', env, model, permissions: 'edit' }]), {
          baseDir: cwd,
        }).result
        return result.tasks.t?.state === 'COMPLETED'
      })
      const total = performance.now() - t0
      if (!ok) throw new Error(`${kind} ${mode} run ${i} failed`)
      rows[`${mode}First`]!.push(server.turns[0]!.at - t0 - spawnedMs)
      rows[`${mode}Total`]!.push(total)
      rows[`${mode}Rss`]!.push(peakMb)
      rows[`${mode}Spawn`]!.push(spawnedMs)
      await server.close()
    }
  }
  console.log(kind, JSON.stringify(Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, v.map(Math.round)]))))
  for (const [label, pick] of [
    ['min', (xs: number[]) => Math.min(...xs)],
    ['median', median],
  ] as const) {
    const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(pick(v))]))
    console.log(
      `${kind}: ${label} of ${runs}: start→CLI process alone ${m.aloneSpawn} ms, via troupe ${m.troupeSpawn} ms; ` +
        `spawn→first request alone ${m.aloneFirst} ms, via troupe ${m.troupeFirst} ms; ` +
        `session alone ${m.aloneTotal} ms, via troupe ${m.troupeTotal} ms (troupe adds ${m.troupeTotal! - m.aloneTotal!} ms); ` +
        `peak RSS alone ${m.aloneRss} MB, via troupe ${m.troupeRss} MB`,
    )
  }
}
await runtime.close({ force: true })
rmSync(root, { recursive: true, force: true })
