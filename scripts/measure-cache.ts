// Measures the task cache's acceptance figure: a 50-task plan with `cache: true` (a DAG, each
// task a real `sh` process that appends to ran.log), run once to fill the cache, then N more
// times unchanged through the CLI in a fresh process each (as a user would). Prints each
// repeat's troupe time (RunResult finishedAt − startedAt), how many agents ran (lines added to
// ran.log: must be 0), and the load average. Uses dist/ (npm run build) when present.
// Run: npx tsx scripts/measure-cache.ts [repeats=10]
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'

const repeats = Number(process.argv[2] ?? 10)
const root = join(import.meta.dirname, '..')
const dist = join(root, 'dist', 'cli', 'main.js')
const cli = existsSync(dist) ? [dist] : ['--import', import.meta.resolve('tsx'), join(root, 'src', 'cli', 'main.ts')]
const dir = mkdtempSync(join(tmpdir(), 'troupe-measure-cache-'))
mkdirSync(join(dir, 'src'))
writeFileSync(join(dir, 'src', 'input.txt'), 'hello\n')
const tasks = Array.from({ length: 50 }, (_, i) => {
  const deps = i < 10 ? '' : `, dependsOn: [t${i - 10}, t${i - 7}]`
  return `  - { id: t${i}, agent: work, cache: true, inputs: [src/*.txt]${deps} }`
})
const agent = `  work: { kind: command, run: [sh, -c, 'echo "$1" >> ran.log; cat src/input.txt', sh, "{{task.id}}"] }`
const plan = ['name: fifty', 'agents:', agent, 'tasks:', ...tasks]
writeFileSync(join(dir, 'plan.yaml'), `${plan.join('\n')}\n`)
const agentRuns = () => readFileSync(join(dir, 'ran.log'), 'utf8').split('\n').filter(Boolean).length

async function run(): Promise<{ ms: number; cached: number }> {
  const { stdout } = await execa(process.execPath, [...cli, 'run', 'plan.yaml', '--json', '--quiet'], { cwd: dir })
  const result = JSON.parse(stdout) as { startedAt: number; finishedAt: number; totals: { cached: number } }
  return { ms: result.finishedAt - result.startedAt, cached: result.totals.cached }
}

const first = await run()
console.log(`first run: ${first.ms} ms, ${agentRuns()} agents ran`)
const times: number[] = []
for (let i = 0; i < repeats; i++) {
  const before = agentRuns()
  const { ms, cached } = await run()
  times.push(ms)
  const load = loadavg()[0]!.toFixed(1)
  console.log(`repeat ${i + 1}: ${ms} ms troupe time, ${cached}/50 cached, ${agentRuns() - before} agents ran, load ${load}`)
}
times.sort((a, b) => a - b)
const median = times[Math.floor(times.length / 2)]
console.log(`repeats: min ${times[0]} ms, median ${median} ms, max ${times.at(-1)} ms (${cli[0] === dist ? 'dist' : 'src via tsx'})`)
rmSync(dir, { recursive: true, force: true })
