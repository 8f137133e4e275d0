import { writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { reportCommand } from '../../src/cli/report-command.ts'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import type { ApprovalEvent } from '../../src/runtime/report/events.ts'
import type { Plan } from '../../src/runtime/plan/plan.ts'
import type { Run } from '../../src/runtime/run.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { LAUNCH_HOOK_TIMEOUT_MS, launchChromium } from '../helpers/chromium.ts'
import { gitIn, tempRepo } from '../helpers/git-repo.ts'

/** Issue 24 part 2: approving from the dashboard, behind its token and JSON-only controls (docs/security.md). */

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')

interface Reply {
  readonly status: number
  readonly body: string
}

function call(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

const bearer = (url: string) => ({ authorization: `Bearer ${new URL(url).searchParams.get('token')}` })
const json = (url: string) => ({ ...bearer(url), 'content-type': 'application/json' })

let runtime: Runtime | undefined
let dashboard: Dashboard | undefined
afterEach(async () => {
  await dashboard?.close()
  await runtime?.close({ force: true })
  dashboard = undefined
  runtime = undefined
})

function awaiting(run: Run, taskId: string): Promise<ApprovalEvent> {
  return new Promise((resolve) => run.on('task:approval', (e) => e.taskId === taskId && e.state === 'awaiting' && resolve(e)))
}

async function gatedRun(runId: string): Promise<{ run: Run; repo: string }> {
  const repo = tempRepo({ 'README.md': 'hi\n', '.gitignore': '.troupe/\n' })
  runtime = createRuntime({
    config: { pool: { minThreads: 0, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { dir: join(repo, '.troupe') } },
  })
  const plan = {
    name: 'gated',
    workspace: 'worktree',
    agents: { edit: join(agents, 'workspace-edit.mjs') },
    tasks: [{ id: 'w', agent: 'edit', approve: true, input: { write: { 'new.txt': 'brand new \u001b]0;pwned\u0007 line\n' } } }],
  } as Plan
  const run = runtime.run(plan, { runId, baseDir: repo })
  dashboard = await startDashboard(runtime)
  await awaiting(run, 'w')
  return { run, repo }
}

describe('approval from the dashboard', () => {
  it('shows a task awaiting approval before merge with its diff (new files included, control characters shown as �) and its output', {
    timeout: 60_000,
  }, async () => {
    await gatedRun('d1')
    const reply = await call(dashboard!.url, '/api/approval?run=d1&task=w', { headers: bearer(dashboard!.url) })
    expect(reply.status).toBe(200)
    const review = JSON.parse(reply.body) as { before: string; diff: string; output: string }
    expect(review.before).toBe('merge')
    expect(review.diff).toContain('new.txt')
    expect(review.diff).toContain('+brand new �]0;pwned� line')
    expect(review.output).toContain('"workspace"')
  })

  it('Approve merges the task', { timeout: 60_000 }, async () => {
    const { run, repo } = await gatedRun('d2')
    const reply = await call(dashboard!.url, '/api/runs/d2/approval', {
      method: 'POST',
      headers: json(dashboard!.url),
      body: JSON.stringify({ task: 'w', decision: 'approve' }),
    })
    expect(reply.status).toBe(200)
    const result = await run.result
    expect(result.tasks.w!.state).toBe('COMPLETED')
    expect(gitIn(repo, 'show', '--stat', '--format=', 'troupe/d2/integration')).toContain('new.txt')
  })

  it('Reject fails the task with ERR_APPROVAL_REJECTED and the reason, journaled as the dashboard', { timeout: 60_000 }, async () => {
    const { run } = await gatedRun('d3')
    const decisions: ApprovalEvent[] = []
    run.on('task:approval', (e) => decisions.push(e))
    const body = JSON.stringify({ task: 'w', decision: 'reject', reason: 'split it in two' })
    expect((await call(dashboard!.url, '/api/runs/d3/approval', { method: 'POST', headers: json(dashboard!.url), body })).status).toBe(200)
    const result = await run.result
    expect(result.tasks.w!.error).toEqual({ code: 'ERR_APPROVAL_REJECTED', message: 'Task "w" was rejected: split it in two' })
    expect(decisions[0]).toMatchObject({ state: 'rejected', by: 'dashboard', reason: 'split it in two' })
  })

  it('refuses a decision that is not JSON (a cross-origin form cannot send one) and leaves the task awaiting', {
    timeout: 60_000,
  }, async () => {
    const { run } = await gatedRun('d4')
    const reply = await call(dashboard!.url, '/api/runs/d4/approval', {
      method: 'POST',
      headers: { ...bearer(dashboard!.url), 'content-type': 'text/plain' },
      body: JSON.stringify({ task: 'w', decision: 'approve' }),
    })
    expect(reply.status).toBe(415)
    expect(run.stateOf('w')).toBe('AWAITING_APPROVAL')
  })

  it('refuses a decision without the token', { timeout: 60_000 }, async () => {
    const { run } = await gatedRun('d5')
    const reply = await call(dashboard!.url, '/api/runs/d5/approval', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'w', decision: 'approve' }),
    })
    expect(reply.status).toBe(401)
    expect(run.stateOf('w')).toBe('AWAITING_APPROVAL')
  })

  it('answers 400 with ERR_APPROVAL_UNKNOWN_TASK for a task the run does not have', { timeout: 60_000 }, async () => {
    await gatedRun('d6')
    const reply = await call(dashboard!.url, '/api/runs/d6/approval', {
      method: 'POST',
      headers: json(dashboard!.url),
      body: JSON.stringify({ task: 'x', decision: 'approve' }),
    })
    expect(reply.status).toBe(400)
    expect(JSON.parse(reply.body).code).toBe('ERR_APPROVAL_UNKNOWN_TASK')
  })
})

describe('approval in the dashboard page (Chromium)', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launchChromium()
  }, LAUNCH_HOOK_TIMEOUT_MS)
  afterAll(async () => {
    await browser?.close()
  })

  it('shows the diff as text (an escape sequence made visible, no markup) and Reject sends the typed reason', {
    timeout: 90_000,
  }, async () => {
    const { run } = await gatedRun('d7')
    const page = await browser.newPage()
    await page.goto(dashboard!.url)
    await page.waitForSelector('#approvals .approval-diff')
    expect(await page.textContent('#approvals .approval-diff')).toContain('+brand new �]0;pwned� line')
    await page.fill('#approvals input', 'rename <b>it</b>')
    await page.click('#approvals button.reject')
    const result = await run.result
    expect(result.tasks.w!.error?.message).toBe('Task "w" was rejected: rename <b>it</b>')
    await page.close()
  })

  it('after a decision, the card and the drill-down say who decided and why (inert text), and so does the report', {
    timeout: 90_000,
  }, async () => {
    const { run, repo } = await gatedRun('d9')
    const page = await browser.newPage()
    await page.goto(dashboard!.url)
    // The box is rebuilt once the review arrives: type after that.
    await page.waitForSelector('#approvals .approval-diff')
    await page.fill('#approvals input', 'no <img id=pwn src=x onerror="window.pwned=1"> here')
    await page.click('#approvals button.reject')
    await run.result
    const said = 'rejected by dashboard before merge: no <img id=pwn src=x onerror="window.pwned=1"> here'
    await page.waitForSelector('#cards [data-task="w"] .approval')
    expect(await page.textContent('#cards [data-task="w"] .approval')).toBe(said)
    await page.click('#cards [data-task="w"]')
    await page.waitForSelector('#detail dd')
    expect(await page.locator('#detail dd', { hasText: 'rejected by dashboard' }).textContent()).toBe(said)
    expect(await page.locator('#pwn').count()).toBe(0)
    writeFileSync(join(repo, 'config.json'), JSON.stringify({ checkpoint: { dir: join(repo, '.troupe') } }))
    const out = join(repo, 'report.html')
    expect(reportCommand('d9', { config: join(repo, 'config.json'), out })).toBe(0)
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#cards [data-task="w"] .approval')
    expect(await page.textContent('#cards [data-task="w"] .approval')).toBe(said)
    expect(await page.locator('#pwn').count()).toBe(0)
    expect(await page.evaluate('typeof window.pwned')).toBe('undefined')
    await page.close()
  })

  it('Approve in the page merges the task', { timeout: 90_000 }, async () => {
    const { run, repo } = await gatedRun('d8')
    const page = await browser.newPage()
    await page.goto(dashboard!.url)
    await page.click('#approvals button.approve')
    expect((await run.result).tasks.w!.state).toBe('COMPLETED')
    expect(gitIn(repo, 'show', 'troupe/d8/integration:new.txt')).toContain('brand new')
    await page.close()
  })
})
