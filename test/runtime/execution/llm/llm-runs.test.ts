import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { TroupeConfig } from '../../../../src/runtime/core/config.ts'
import type { LimitPausedEvent, RunEvents, TaskStateEvent } from '../../../../src/runtime/report/events.ts'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'
import { startAnthropicStandIn } from '../../../fixtures/standins/anthropic-server.ts'
import { startOpenAiStandIn, type StandIn, type StandInScript } from '../../../fixtures/standins/openai-server.ts'
import { SECRET } from './llm-test-kit.ts'

// Whole runs of `openai` agents through the real SDK against the local stand-in server.
const KEY_ENV = 'TROUPE_TEST_LLM_KEY'

let standIn: StandIn | undefined
let runtime: Runtime | undefined

beforeAll(() => {
  process.env[KEY_ENV] = SECRET
})
afterAll(() => {
  delete process.env[KEY_ENV]
})
afterEach(async () => {
  await runtime?.close()
  await standIn?.close()
  runtime = undefined
  standIn = undefined
})

function writers(baseUrl: string, n: number, extra: Partial<Plan['tasks'][number]> = {}): Plan {
  return {
    name: 'llm',
    agents: { writer: { kind: 'openai', model: 'gpt-standin', baseUrl, apiKeyEnv: KEY_ENV } },
    tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i + 1}`, agent: 'writer', input: { prompt: `Summarise part ${i + 1}` }, ...extra })),
  } as Plan
}

function start(config: TroupeConfig) {
  runtime = createRuntime({ config: { checkpoint: { enabled: false }, governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 4 }, ...config } })
  return runtime
}

describe('a 429 pauses the limit the whole team uses, once', () => {
  let states: TaskStateEvent[]
  let pauses: LimitPausedEvent[]
  let requests: number
  let limitedAt: number
  let result: Awaited<ReturnType<Runtime['run']>['result']>

  beforeAll(async () => {
    standIn = await startOpenAiStandIn((r) => (r.index === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { text: 'a short summary', chunks: 3, delayMs: 30 }))
    const run = start({ maxParallel: 4, limits: { llm: { maxConcurrent: 3 } } }).run(writers(standIn.url, 10, { uses: ['llm'] }))
    states = []
    pauses = []
    run.on('task:state', (e) => states.push(e))
    run.on('limit:paused', (e) => pauses.push(e))
    result = await run.result
    requests = standIn.requests.length
    limitedAt = standIn.requests[0]!.at
    await runtime!.close()
    await standIn.close()
  }, 30_000)

  it('emits exactly one limit:paused event, for the llm limit, naming the run and the task', () => {
    expect(pauses).toHaveLength(1)
    expect(pauses[0]).toMatchObject({ runId: result.runId, limits: ['llm'] })
    expect(result.tasks[pauses[0]!.taskId]).toBeDefined()
  })

  it('pauses until the retry-after of the 429', () => {
    // The stand-in received the call before the SDK saw its answer, so retry-after counts from later.
    expect(pauses[0]!.until - limitedAt).toBeGreaterThanOrEqual(1000)
  })

  it('completes every task and fails none', () => {
    expect(states.filter((e) => e.state === 'FAILED')).toEqual([])
    expect(Object.values(result.tasks).map((t) => t.state)).toEqual(Array(10).fill('COMPLETED'))
  })

  it('starts no task while the limit is paused', () => {
    const pause = pauses[0]!
    const startsInPause = states.filter((e) => e.state === 'RUNNING' && e.at >= pause.at && e.at < pause.until)
    expect(startsInPause).toEqual([])
    // Not vacuous: the 7 tasks never started, and the rate-limited one, start after it.
    expect(states.filter((e) => e.state === 'RUNNING' && e.at >= pause.until).length).toBeGreaterThanOrEqual(8)
  })

  it('retries only the rate-limited call: 10 tasks, 11 requests', () => {
    expect(requests).toBe(11)
  })

  it('does not count the rate-limited attempt as a failure', () => {
    expect(result.tasks[pauses[0]!.taskId]!.error).toBeUndefined()
  })
})

describe('rate limits on a runtime', () => {
  it('fails with ERR_RATE_LIMITED once retry.rateLimitRetries are used up', async () => {
    standIn = await startOpenAiStandIn(() => ({ status: 429, headers: { 'retry-after-ms': '20' } }))
    const result = await start({ retry: { rateLimitRetries: 2 }, limits: { llm: { maxConcurrent: 1 } } }).run(writers(standIn.url, 1, { uses: ['llm'] })).result
    expect([result.tasks.t1!.state, result.tasks.t1!.error?.code]).toEqual(['FAILED', 'ERR_RATE_LIMITED'])
    expect(standIn.requests).toHaveLength(3)
  })

  it('keeps starting tasks on other limits while one is paused', async () => {
    const prompt = (r: { body: Record<string, unknown> }) => String((r.body.messages as { content: string }[]).at(-1)!.content)
    standIn = await startOpenAiStandIn((r) => (prompt(r) === 'limited' && r.index < 2 ? { status: 429, headers: { 'retry-after': '2' } } : { text: 'ok', delayMs: 20 }))
    const agents = { writer: { kind: 'openai', model: 'gpt-standin', baseUrl: standIn.url, apiKeyEnv: KEY_ENV } }
    const plan = {
      name: 'two-limits',
      agents,
      tasks: [
        { id: 'limited', agent: 'writer', input: { prompt: 'limited' }, uses: ['llm'] },
        { id: 'first', agent: 'writer', input: { prompt: 'first' } },
        { id: 'other', agent: 'writer', input: { prompt: 'other' }, uses: ['other'], dependsOn: ['first'] },
      ],
    } as Plan
    const run = start({ maxParallel: 3, limits: { llm: { maxConcurrent: 1 }, other: { maxConcurrent: 1 } } }).run(plan)
    const states: TaskStateEvent[] = []
    const pauses: LimitPausedEvent[] = []
    run.on('task:state', (e) => states.push(e))
    run.on('limit:paused', (e) => pauses.push(e))
    const result = await run.result
    expect(Object.values(result.tasks).map((t) => t.state)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED'])
    const otherStart = states.find((e) => e.taskId === 'other' && e.state === 'RUNNING')!.at
    expect(pauses.map((p) => p.limits)).toEqual([['llm']])
    expect(otherStart).toBeLessThan(pauses[0]!.until)
  })
})

describe('kind anthropic on a runtime', () => {
  it('runs the task and hands its text to a dependent through {{deps.…}}', async () => {
    standIn = await startAnthropicStandIn((r) => ({ text: r.index === 0 ? 'first answer' : 'second answer' }))
    const plan = {
      name: 'anthropic',
      agents: { claude: { kind: 'anthropic', model: 'claude-standin', baseUrl: standIn.url, apiKeyEnv: KEY_ENV } },
      tasks: [
        { id: 'a', agent: 'claude', input: { prompt: 'first' } },
        { id: 'b', agent: 'claude', input: { prompt: 'Improve: {{deps.a.output.text}}' }, dependsOn: ['a'] },
      ],
    } as Plan
    const result = await start({}).run(plan).result
    expect([result.status, (result.tasks.b!.output as { text: string }).text]).toEqual(['completed', 'second answer'])
    expect(standIn.requests[1]!.body.messages).toEqual([{ role: 'user', content: 'Improve: first answer' }])
  })
})

describe('timeouts and cancellation', () => {
  it('a timed-out attempt cancels its HTTP request', async () => {
    standIn = await startOpenAiStandIn(() => ({ text: 'a b c d e f g h', delayMs: 2000 }))
    const result = await start({}).run(writers(standIn.url, 1, { timeoutMs: 300 })).result
    await standIn.hungUp()
    expect([result.tasks.t1!.error?.code, standIn.hangUps]).toEqual(['ERR_TASK_TIMEOUT', 1])
  })

  it('cancelling the run cancels the HTTP requests in flight', async () => {
    standIn = await startOpenAiStandIn(() => ({ text: 'a b c d e f g h', delayMs: 2000 }))
    const controller = new AbortController()
    const run = start({ maxParallel: 2 }).run(writers(standIn.url, 2), { signal: controller.signal })
    while (standIn.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
    controller.abort()
    const result = await run.result
    await standIn.hungUp(2)
    expect([result.status, standIn.hangUps]).toEqual(['cancelled', 2])
  })
})

describe('budget with priced LLM agents', () => {
  it('starts no task whose agent\'s mean spend no longer fits in budget.maxCostUsd (it used to start blind and overshoot)', async () => {
    standIn = await startOpenAiStandIn(() => ({ text: 'ok', inputTokens: 400_000, outputTokens: 0 }))
    const config: TroupeConfig = {
      maxParallel: 1,
      budget: { maxCostUsd: 1 },
      models: { writer: { model: 'gpt-standin', inputUsdPerMTok: 1, outputUsdPerMTok: 4 } },
    }
    const result = await start(config).run(writers(standIn.url, 5)).result
    // Each call costs $0.40: after two, a third ($0.40 at the agent's mean) no longer fits in $1, so it never starts.
    expect(Object.values(result.tasks).map((t) => t.state)).toEqual(['COMPLETED', 'COMPLETED', 'CANCELLED', 'CANCELLED', 'CANCELLED'])
    expect([result.error?.code, result.usage?.total]).toEqual(['ERR_BUDGET_EXCEEDED', { costUsd: 0.8, tokens: 800_000, apiCalls: 2 }])
    expect(standIn.requests).toHaveLength(2)
  })
})

describe('API keys', () => {
  it('never appear in the RunResult, the events or the run directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-llm-secret-'))
    try {
      const echoKey: StandInScript = (r) => {
        const auth = String(r.headers.authorization)
        const prompt = String((r.body.messages as { content: string }[]).at(-1)!.content)
        if (prompt.includes('part 1')) return { status: 401, body: { error: { message: `Incorrect API key provided: ${auth}`, type: 'invalid_request_error' } } }
        if (prompt.includes('part 2') && r.index < 3) return { status: 429, headers: { 'retry-after-ms': '10' }, body: { error: { message: `Rate limit for ${auth}` } } }
        if (prompt.includes('part 3')) return { status: 500, body: { error: { message: `Internal error for key ${SECRET}` } } }
        return { text: 'done' }
      }
      standIn = await startOpenAiStandIn(echoKey)
      runtime = createRuntime({ config: { checkpoint: { dir }, governor: { enabled: false }, limits: { llm: { maxConcurrent: 2 } } } })
      const run = runtime.run(writers(standIn.url, 4, { uses: ['llm'] }), { runId: 'secret-check' })
      const events: unknown[] = []
      const names: (keyof RunEvents)[] = ['run:start', 'task:state', 'task:progress', 'task:log', 'run:end', 'budget:exceeded', 'limit:paused']
      for (const name of names) runtime.on(name, (event: unknown) => events.push(event))
      const result = await run.result
      await runtime.close()
      expect(standIn.requests.every((r) => r.headers.authorization === `Bearer ${SECRET}`)).toBe(true)
      expect(result.tasks.t1!.error?.message).toContain('Incorrect API key')
      expect(JSON.stringify(result)).not.toContain(SECRET)
      expect(JSON.stringify(events)).not.toContain(SECRET)
      const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
      expect(files.length).toBeGreaterThan(0)
      for (const file of files) expect(readFileSync(join(file.parentPath, file.name), 'utf8'), file.name).not.toContain(SECRET)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
