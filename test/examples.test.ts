import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import type { TaskStateEvent } from '../src/runtime/report/events.ts'
import { type CompiledPlan, type Plan } from '../src/runtime/plan/plan.ts'
import { compilePlan, loadPlan } from '../src/runtime/plan/load-plan.ts'
import { startOpenAiStandIn, type StandIn, type StandInRequest } from './fixtures/standins/openai-server.ts'
import type { RunResult } from '../src/runtime/report/result.ts'
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts'

const examples = join(import.meta.dirname, '..', 'examples')

/** RUNNING periods [start, end] of every attempt, by task id, from task:state events. */
function runningPeriods(events: readonly TaskStateEvent[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>()
  for (const e of events) {
    if (e.state === 'RUNNING') out.set(e.taskId, [...(out.get(e.taskId) ?? []), [e.at, Infinity]])
    else if (e.previous === 'RUNNING') out.get(e.taskId)!.at(-1)![1] = e.at
  }
  return out
}

/** The most tasks of `ids` RUNNING at once, from the order of task:state events. */
function peakRunning(events: readonly TaskStateEvent[], ids: ReadonlySet<string>): number {
  let running = 0
  let peak = 0
  for (const e of events) {
    if (!ids.has(e.taskId)) continue
    if (e.state === 'RUNNING') peak = Math.max(peak, ++running)
    else if (e.previous === 'RUNNING') running--
  }
  return peak
}

describe('examples/full-stack-feature', () => {
  const dir = join(examples, 'full-stack-feature')
  let plan: CompiledPlan
  let runtime: Runtime
  let result: RunResult
  const events: TaskStateEvent[] = []

  beforeAll(async () => {
    plan = loadPlan(join(dir, 'plan.yaml'))
    const config = JSON.parse(readFileSync(join(dir, 'troupe.config.json'), 'utf8'))
    // The governor would hold back starts when other work loads the machine; these tests
    // are about the plan's own constraints (dependencies, claims, the llm limit).
    runtime = createRuntime({ config: { ...config, checkpoint: { enabled: false }, governor: { enabled: false } } })
    const run = runtime.run(plan)
    run.on('task:state', (e) => events.push(e))
    result = await run.result
  })

  afterAll(async () => {
    await runtime?.close()
  })

  it('completes every task', () => {
    expect(result.status).toBe('completed')
    expect(Object.fromEntries(Object.entries(result.tasks).map(([id, t]) => [id, t.state]))).toEqual(
      Object.fromEntries(plan.tasks.map((t) => [t.id, 'COMPLETED'])),
    )
  })

  it('starts each task only after all its dependencies finished', () => {
    const periods = runningPeriods(events)
    for (const task of plan.tasks) {
      const firstStart = periods.get(task.id)![0]![0]
      for (const dep of task.deps) {
        const depEnd = periods.get(plan.tasks[dep]!.id)!.at(-1)![1]
        expect(firstStart, `${task.id} after ${plan.tasks[dep]!.id}`).toBeGreaterThanOrEqual(depEnd)
      }
    }
  })

  it('retries the backend after its simulated rate limit', () => {
    expect(result.tasks.backend!.attempts).toBe(2)
  })

  it('hands the backend and frontend outputs to qa through ctx.dependencies', () => {
    const qa = result.tasks.qa!.output as { contract: { endpoints: number; calls: number; missing: string[] } }
    expect(qa.contract).toEqual({ endpoints: 4, calls: 4, missing: [] })
  })

  it('never runs frontend and ux at once (overlapping claims)', () => {
    const periods = runningPeriods(events)
    for (const [fs, fe] of periods.get('frontend')!) {
      for (const [us, ue] of periods.get('ux')!) expect(fs >= ue || us >= fe).toBe(true)
    }
  })

  it('runs at most limits.llm.maxConcurrent tasks that use llm at once', () => {
    const llmTasks = new Set(plan.tasks.filter((t) => t.uses.includes('llm')).map((t) => t.id))
    expect(peakRunning(events, llmTasks)).toBe(2)
  })
})

describe('examples/codebase-analysis', () => {
  const dir = join(examples, 'codebase-analysis')
  const planFile = join(dir, 'plan.yaml')

  it('has a valid plan whose report depends on every file task', () => {
    const plan = loadPlan(planFile)
    const report = plan.tasks[plan.byId.get('report')!]!
    expect(report.deps.map((i) => plan.tasks[i]!.id).sort()).toEqual(plan.tasks.filter((t) => t !== report).map((t) => t.id).sort())
  })

  it('names only files that exist after npm ci', () => {
    const plan = loadPlan(planFile)
    const missing = plan.tasks
      .filter((t) => t.agent === 'analyse-file')
      .map((t) => resolve(dir, (t.input as { file: string }).file))
      .filter((file) => !existsSync(file))
    expect(missing).toEqual([])
  })

  it('is what make-plan.mjs generates', async () => {
    const out = mkdtempSync(join(tmpdir(), 'troupe-make-plan-'))
    try {
      await promisify(execFile)(process.execPath, [join(dir, 'make-plan.mjs'), '--out', join(out, 'plan.yaml')])
      const inputs = (plan: CompiledPlan) => plan.tasks.map((t) => [t.id, t.input, t.estimateMs])
      expect(inputs(loadPlan(join(out, 'plan.yaml')))).toEqual(inputs(loadPlan(planFile)))
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })

  it('analyses a subset of the files and aggregates them in the report', async () => {
    const full = loadPlan(planFile)
    const files = ['analyse-usb.js', 'analyse-audio.js']
    const subset: Plan = {
      name: 'codebase-analysis-subset',
      agents: Object.fromEntries(full.tasks.map((t) => [t.agent, fileURLToPath(t.moduleUrl)])),
      tasks: [
        ...files.map((id) => full.tasks[full.byId.get(id)!]!.spec),
        { ...full.tasks[full.byId.get('report')!]!.spec, dependsOn: files },
      ],
    }
    const runtime = createRuntime({ config: { maxParallel: 2, checkpoint: { enabled: false }, governor: { enabled: false } } })
    try {
      const result = await runtime.run(subset, { baseDir: dir }).result
      expect(result.status).toBe('completed')
      const report = result.tasks.report!.output as { totals: { files: number; lines: number } }
      const realLines = files
        .map((id) => readFileSync(resolve(dir, (full.tasks[full.byId.get(id)!]!.input as { file: string }).file), 'utf8'))
        .reduce((sum, text) => sum + text.split('\n').length - (text.endsWith('\n') ? 1 : 0), 0)
      expect(report.totals).toMatchObject({ files: 2, lines: realLines })
    } finally {
      await runtime.close()
    }
  })
})

describe('examples/cpu-burst', () => {
  it('is a plan of eight independent CPU-bound tasks with a real agent module', () => {
    const plan = loadPlan(join(examples, 'cpu-burst', 'plan.yaml'))
    expect(plan.tasks.map((t) => [t.deps.length, t.agent])).toEqual(Array.from({ length: 8 }, () => [0, 'spin']))
    expect(existsSync(fileURLToPath(plan.tasks[0]!.moduleUrl))).toBe(true)
  })
})

describe('examples/llm-fanout (real openai SDK against a local stand-in server)', () => {
  const dir = join(examples, 'llm-fanout')
  const topics = ['scheduling', 'admission', 'journal', 'execution']
  let standIn: StandIn
  let runtime: Runtime
  let result: RunResult
  const savedKey = process.env.OPENAI_API_KEY
  const lastMessage = (r: StandInRequest) => String((r.body.messages as { content: string }[]).at(-1)!.content)

  beforeAll(async () => {
    // Stand-in: answers a summariser with "SUMMARY(<file>)" and the merge with "MERGED".
    standIn = await startOpenAiStandIn((r) => {
      const prompt = lastMessage(r)
      const file = /Summarise (docs\/\S+) in/.exec(prompt)?.[1]
      return { text: file ? `SUMMARY(${file})` : 'MERGED', inputTokens: 1000, outputTokens: 100, delayMs: 5 }
    })
    process.env.OPENAI_API_KEY = 'sk-standin-example'
    const raw = parseYaml(readFileSync(join(dir, 'plan.yaml'), 'utf8')) as { agents: Record<string, { baseUrl?: string }> }
    for (const name of ['summarise', 'merge']) raw.agents[name]!.baseUrl = standIn.url
    const plan = compilePlan(raw, { baseDir: dir })
    const config = JSON.parse(readFileSync(join(dir, 'troupe.config.json'), 'utf8'))
    runtime = createRuntime({ config: { ...config, checkpoint: { enabled: false }, governor: { enabled: false } } })
    result = await runtime.run(plan).result
  })

  afterAll(async () => {
    await runtime?.close()
    await standIn?.close()
    if (savedKey === undefined) delete process.env.OPENAI_API_KEY
    else process.env.OPENAI_API_KEY = savedKey
  })

  it('completes every task', () => {
    expect(result.status).toBe('completed')
    expect(result.totals).toMatchObject({ tasks: 9, completed: 9 })
  })

  it("puts each file's text into its summariser's prompt", () => {
    for (const topic of topics) {
      const request = standIn.requests.find((r) => lastMessage(r).includes(`docs/${topic}.md`))!
      expect(lastMessage(request)).toContain(readFileSync(join(dir, 'docs', `${topic}.md`), 'utf8').trim())
    }
  })

  it("merges the four summaries, read through {{deps.…}} in the merge task's prompt", () => {
    const merge = standIn.requests.find((r) => lastMessage(r).startsWith('Merge these'))!
    for (const topic of topics) expect(lastMessage(merge)).toContain(`SUMMARY(docs/${topic}.md)`)
    expect(result.tasks.merge!.output).toMatchObject({ text: 'MERGED', model: 'gpt-4.1-mini' })
  })

  it('prices the calls from troupe.config.json models', () => {
    // 5 calls × (1000 in × $0.4 + 100 out × $1.6) per million tokens.
    expect(result.usage?.total).toEqual({ costUsd: 0.0028, tokens: 5500, apiCalls: 5 })
  })
})

describe('examples/checks', () => {
  it('type-checks, lints and tests every package in parallel, then summarises', async () => {
    const runtime = createRuntime({ config: { maxParallel: 4, checkpoint: { enabled: false }, governor: { enabled: false } } })
    try {
      const result = await runtime.run(loadPlan(join(examples, 'checks', 'plan.yaml'))).result
      expect(result.status).toBe('completed')
      expect(result.tasks.summary?.output).toMatchObject({ exitCode: 0, json: { checks: 9, failed: 0 } })
    } finally {
      await runtime.close({ force: true })
    }
  })
})

describe('examples/dynamic-checks', () => {
  it('adds a typecheck, lint and test task per package found at run time, and waits for them', async () => {
    const runtime = createRuntime({ config: { maxParallel: 2, checkpoint: { enabled: false }, governor: { enabled: false } } })
    try {
      const result = await runtime.run(loadPlan(join(examples, 'dynamic-checks', 'plan.yaml'))).result
      expect(result.status).toBe('completed')
      expect(result.tasks.discover?.output).toMatchObject({ packages: ['dates', 'math', 'strings'], checks: 9 })
      expect(result.tasks['lint-math']).toMatchObject({ state: 'COMPLETED', added: true, parent: 'discover' })
      expect(result.totals.tasks).toBe(10)
    } finally {
      await runtime.close({ force: true })
    }
  })
})

describe('examples/full-stack-team (claude-code stand-in)', () => {
  it('runs the team from architect to deploy against the stand-in CLI', async () => {
    const dir = join(examples, 'full-stack-team')
    const config = JSON.parse(readFileSync(join(dir, 'troupe.config.json'), 'utf8'))
    const runtime = createRuntime({ config: { ...config, checkpoint: { enabled: false }, governor: { enabled: false } } })
    try {
      // The documented way to try it without an account: the stand-in `claude` as each agent's bin.
      const plan = parseYaml(readFileSync(join(dir, 'plan.yaml'), 'utf8')) as Plan & { agents: Record<string, object> }
      for (const name of Object.keys(plan.agents)) plan.agents[name] = { ...plan.agents[name], bin: join(import.meta.dirname, 'fixtures', 'bin', 'claude') }
      const result = await runtime.run(plan).result
      expect(result.status).toBe('completed')
      expect(Object.keys(result.tasks)).toEqual(['architect', 'backend', 'frontend', 'ux', 'qa', 'security', 'deploy'])
      expect(result.tasks.deploy?.output).toMatchObject({ sessionId: expect.any(String) })
    } finally {
      await runtime.close({ force: true })
    }
  })
})
