import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { networkInterfaces } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { LAUNCH_HOOK_TIMEOUT_MS, launchChromium } from '../helpers/chromium.ts'

const agent = fileURLToPath(new URL('../fixtures/agents/sleep-progress.mjs', import.meta.url))

/** `a`, then eight tasks that need it, then `z` after all of them. */
function fanOutPlan() {
  const middle = Array.from({ length: 8 }, (_, i) => ({ id: `b${i + 1}`, agent, input: { ms: 500, steps: 4 }, dependsOn: ['a'] }))
  return {
    name: 'dashboard-test',
    tasks: [{ id: 'a', agent, input: { ms: 600, steps: 4 } }, ...middle, { id: 'z', agent, input: { ms: 200, steps: 2 }, dependsOn: middle.map((t) => t.id) }],
  }
}

/** The token the dashboard printed in its URL, as an Authorization header. */
function auth(url: string): Record<string, string> {
  return { authorization: `Bearer ${new URL(url).searchParams.get('token') ?? ''}` }
}

function get(url: string, path: string, headers: Record<string, string> = auth(url)): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    // http.request sends the path as given: no client-side normalisation of `..`.
    const req = request({ host: hostname, port, path, method: 'GET', headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

function post(url: string, path: string, type: string, body: string, headers: Record<string, string> = auth(url)): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'POST', headers: { 'content-type': type, ...headers } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Most attempts running at once among these intervals. */
function peakOverlap(intervals: readonly { start: number; end: number }[]): number {
  const edges = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ])
  edges.sort((x, y) => x.at - y.at || x.delta - y.delta)
  let now = 0
  let peak = 0
  for (const e of edges) peak = Math.max(peak, (now += e.delta))
  return peak
}

describe('dashboard in Chromium', () => {
  let browser: Browser
  let runtime: Runtime
  let dashboard: Dashboard

  beforeAll(async () => {
    browser = await launchChromium()
    // The governor would hold starts back on a busy machine; this test is about the control.
    runtime = createRuntime({ config: { maxParallel: 1, pool: { minThreads: 1, maxThreads: 4 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    dashboard = await startDashboard(runtime)
  }, LAUNCH_HOOK_TIMEOUT_MS)

  afterAll(async () => {
    await dashboard?.close()
    await runtime?.close({ force: true })
    await browser?.close()
  })

  it('follows a real run to its end, and its maxParallel control takes effect', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } })
    await page.goto(dashboard.url)
    await page.waitForSelector('#connection:text("live")')
    const run = runtime.run(fanOutPlan())
    const plan = fanOutPlan()

    // Observed live: the first card reaches RUNNING while the run is in flight.
    await page.waitForSelector('[data-task="a"][data-state="RUNNING"]')
    expect(run.stateOf('z')).toBe('PENDING')
    // Let two tasks run one at a time at maxParallel 1 before widening it.
    await page.waitForSelector('[data-task="b1"][data-state="COMPLETED"]')

    await page.fill('#max-parallel-input', '3')
    await page.click('#max-parallel-apply')
    await page.waitForSelector('#control-message[data-ok="true"]')
    const changedAt = Date.now()
    expect(run.maxParallel).toBe(3)
    await page.waitForSelector('#max-parallel-current[data-value="3"]')

    const result: RunResult = await run.result
    await page.waitForSelector('body[data-status="completed"]')

    for (const task of plan.tasks) {
      const card = page.locator(`#cards [data-task="${task.id}"]`)
      expect(await card.getAttribute('data-state')).toBe('COMPLETED')
      expect(await card.getAttribute('data-history')).toBe('PENDING QUEUED RUNNING COMPLETED')
    }
    expect(await page.textContent('#speedup .value')).toBe(`${result.speedup.toFixed(2)}x`)
    expect(await page.textContent('#count-COMPLETED .value')).toBe(String(plan.tasks.length))
    const bars = await page.locator('#timeline [data-task]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-task')))
    expect(new Set(bars)).toEqual(new Set(plan.tasks.map((t) => t.id)))

    const intervals = Object.values(result.tasks).map((t) => ({ start: t.startedAt!, end: t.finishedAt! }))
    const before = intervals.filter((i) => i.end <= changedAt)
    expect(before.length).toBeGreaterThanOrEqual(2)
    expect(peakOverlap(before)).toBe(1)
    expect(peakOverlap(intervals.filter((i) => i.start >= changedAt))).toBeGreaterThanOrEqual(2)

    mkdirSync('test-results', { recursive: true })
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true })
    await page.close()
  })

  it('shows tasks added at run time as they arrive, with their parent, description and tags', async () => {
    const page = await browser.newPage()
    await page.goto(dashboard.url)
    // Connected (the label says "run ended": the page shows the previous test's finished run).
    await page.waitForSelector('#connection[data-state="open"]')
    const spawn = fileURLToPath(new URL('../fixtures/agents/spawn.mjs', import.meta.url))
    const children = [1, 2].map((n) => ({ id: `child-${n}`, agent, description: `child number ${n}`, tags: ['spawned'], input: { ms: 200, steps: 2 } }))
    const run = runtime.run({ name: 'spawning', tasks: [{ id: 'lead', agent: spawn, input: { wait: true, children } }] })
    await page.waitForSelector('[data-task="child-2"]')
    await run.result
    await page.waitForSelector('#cards [data-task="child-2"][data-state="COMPLETED"]')
    const card = page.locator('#cards [data-task="child-2"]')
    expect(await card.locator('.added').textContent()).toBe('added by lead')
    expect(await card.locator('.description').textContent()).toBe('child number 2')
    expect(await card.locator('.tag').textContent()).toBe('spawned')
    await page.close()
  })

  it('rejects a maxParallel below 1 with ERR_ARGUMENT_INVALID and leaves the run as it was', async () => {
    const run = runtime.run({ name: 'control', tasks: [{ id: 'slow', agent, input: { ms: 400 } }] }, { runId: 'control-run' })
    await new Promise((resolve) => setImmediate(resolve))
    const response = await post(dashboard.url, '/api/runs/control-run/max-parallel', 'application/json', JSON.stringify({ maxParallel: 0 }))
    expect(response.status).toBe(400)
    expect(JSON.parse(response.body)).toMatchObject({ code: 'ERR_ARGUMENT_INVALID' })
    expect(run.maxParallel).toBe(1)
    await run.result
  })

  it('refuses a control request that is not JSON, as a cross-site form would send', async () => {
    const run = runtime.run({ name: 'form', tasks: [{ id: 'slow', agent, input: { ms: 400 } }] }, { runId: 'form-run' })
    await new Promise((resolve) => setImmediate(resolve))
    const response = await post(dashboard.url, '/api/runs/form-run/max-parallel', 'text/plain', JSON.stringify({ maxParallel: 4 }))
    expect(response.status).toBe(415)
    expect(run.maxParallel).toBe(1)
    await run.result
  })

  it('serves nothing outside its own assets', async () => {
    const attempts = [
      '/../package.json',
      '/../../package.json',
      '/%2e%2e/package.json',
      '/%2E%2E/package.json',
      '/..%2fpackage.json',
      '/%2e%2e%2fpackage.json',
      '/app.js/../../package.json',
      '/..%5cpackage.json',
      '/%252e%252e/package.json',
      '/%00/package.json',
      '/%E0%A4%A',
      '/package.json',
      '/server.ts',
      '/assets/app.js',
    ]
    for (const path of attempts) {
      const response = await get(dashboard.url, path)
      expect({ path, status: [400, 404].includes(response.status) }).toEqual({ path, status: true })
      expect(response.body).not.toContain('"name"')
    }
    expect((await get(dashboard.url, '/app.js')).status).toBe(200)
  })

  it('binds 127.0.0.1 by default', async () => {
    expect(new URL(dashboard.url).hostname).toBe('127.0.0.1')
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
    // On a machine with a non-loopback address, the dashboard must not answer on it.
    if (external) {
      const url = dashboard.url.replace('127.0.0.1', external.address)
      await expect(get(url, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    }
  })

  it('answers only requests addressed to the host it serves', async () => {
    const response = await get(dashboard.url, '/', { ...auth(dashboard.url), host: 'attacker.example:80' })
    expect(response.status).toBe(421)
  })
})

describe('dashboard at the end of a run', () => {
  let browser: Browser

  beforeAll(async () => {
    browser = await launchChromium()
  }, LAUNCH_HOOK_TIMEOUT_MS)

  afterAll(async () => {
    await browser?.close()
  })

  it('shows the final state when closed right after the run, as the CLI does (regression: the page froze at "running · disconnected")', async () => {
    const rt = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const dash = await startDashboard(rt)
    try {
      const page = await browser.newPage()
      await page.goto(dash.url)
      await page.waitForSelector('#connection:text("live")')
      const result = await rt.run({ name: 'ending', tasks: [{ id: 'only', agent, input: { ms: 300, steps: 2 } }] }).result
      await dash.close()
      await page.waitForSelector('#connection:text("run ended")')
      expect(await page.getAttribute('body', 'data-status')).toBe('completed')
      expect(await page.textContent('#speedup .value')).toBe(`${result.speedup.toFixed(2)}x`)
      await page.close()
    } finally {
      await dash.close()
      await rt.close({ force: true })
    }
  })

  it('draws a failed attempt red even when its retry succeeded, with a legend', async () => {
    const rt = createRuntime({ config: { maxParallel: 1, pool: { minThreads: 1, maxThreads: 1 }, retry: { maxRetries: 1, delayMs: 0 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
    const dash = await startDashboard(rt)
    try {
      const page = await browser.newPage()
      await page.goto(dash.url)
      await page.waitForSelector('#connection:text("live")')
      const flaky = fileURLToPath(new URL('../fixtures/agents/flaky.mjs', import.meta.url))
      const dir = mkdtempSync(join(tmpdir(), 'troupe-flaky-'))
      await rt.run({ name: 'retry', tasks: [{ id: 'f', agent: flaky, input: { dir, failures: 1 } }] }).result
      await page.waitForSelector('body[data-status="completed"]')
      const classes = await page.locator('#timeline [data-task="f"]').evaluateAll((nodes) => nodes.map((n) => `${n.getAttribute('data-attempt')}:${n.getAttribute('class')}`))
      expect(classes).toEqual(['1:bar-group FAILED attempt-failed', '2:bar-group COMPLETED'])
      expect(await page.textContent('#legend')).toContain('failed attempt')
      await page.close()
    } finally {
      await dash.close()
      await rt.close({ force: true })
    }
  })
})
