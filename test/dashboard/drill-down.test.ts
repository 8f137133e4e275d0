import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { reportCommand } from '../../src/cli/report-command.ts'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { LAUNCH_HOOK_TIMEOUT_MS, launchChromium } from '../helpers/chromium.ts'
import { tempRepo } from '../helpers/git-repo.ts'
import { loadPlan } from '../../src/runtime/plan/load-plan.ts'

const sleeper = fileURLToPath(new URL('../fixtures/agents/sleep-progress.mjs', import.meta.url))
const noter = fileURLToPath(new URL('../fixtures/agents/scratchpad-note.mjs', import.meta.url))

/** A command agent that prints `line 1` … `line 30`, then fails while `<dir>/fail` exists. */
function loudPlan(dir: string) {
  const fail = JSON.stringify(join(dir, 'fail'))
  const script = `for (let i = 1; i <= 30; i++) console.log('line ' + i); process.exit(require('fs').existsSync(${fail}) ? 1 : 0)`
  return {
    name: 'drill',
    agents: { loud: { kind: 'command' as const, run: ['node', '-e', script] } },
    tasks: [
      { id: 'loud', agent: 'loud' },
      { id: 'quiet', agent: sleeper, input: { ms: 100, steps: 1 } },
      { id: 'note', agent: noter, input: { append: 'api lives in src/api.ts' } },
    ],
  }
}

function runtimeIn(dir: string): Runtime {
  const checkpoint = { enabled: true, dir: join(dir, '.troupe') }
  return createRuntime({ config: { maxParallel: 3, governor: { enabled: false }, checkpoint } })
}

/** The snapshot a report embeds. */
function embedded(html: string) {
  const json = /<script type="application\/json" id="troupe-data">([\s\S]*?)<\/script>/.exec(html)![1]!
  type Task = { id: string; logs: string[]; intervals: { attempt: number; failed?: boolean }[] }
  return JSON.parse(json) as { runs: { notes?: { text: string }[]; tasks: Task[] }[] }
}

describe('troupe report of a resumed run', () => {
  it("has every task's log, the scratchpad and the first invocation's failed attempt (regression: logs [], no notes)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-report-'))
    writeFileSync(join(dir, 'fail'), '')
    const first = runtimeIn(dir)
    expect((await first.run(loudPlan(dir), { runId: 'twice' }).result).status).toBe('failed')
    await first.close()
    rmSync(join(dir, 'fail'))
    const second = runtimeIn(dir)
    expect((await second.run(loudPlan(dir), { runId: 'twice' }).result).status).toBe('completed')
    await second.close()
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ checkpoint: { dir: join(dir, '.troupe') } }))
    const out = join(dir, 'report.html')
    expect(reportCommand('twice', { config: join(dir, 'config.json'), out })).toBe(0)
    const run = embedded(readFileSync(out, 'utf8')).runs[0]!
    const loud = run.tasks.find((t) => t.id === 'loud')!
    expect(loud.logs).toContain('line 30')
    expect(loud.logs.filter((l) => l === 'line 1')).toHaveLength(2)
    expect(loud.intervals.map((i) => i.failed === true)).toEqual([true, false])
    expect(run.notes?.map((n) => n.text)).toEqual(['api lives in src/api.ts'])
  })
})

describe('dashboard drill-down in Chromium', () => {
  let browser: Browser
  let runtime: Runtime
  let dashboard: Dashboard
  let dir: string

  beforeAll(async () => {
    browser = await launchChromium()
    dir = mkdtempSync(join(tmpdir(), 'troupe-drill-'))
    writeFileSync(join(dir, 'fail'), '')
    runtime = runtimeIn(dir)
    dashboard = await startDashboard(runtime)
  }, LAUNCH_HOOK_TIMEOUT_MS)

  afterAll(async () => {
    await dashboard?.close()
    await runtime?.close({ force: true })
    await browser?.close()
  })

  it('drops "live" and the maxParallel control once the run ends, with the stream still open', async () => {
    const page = await browser.newPage()
    await page.goto(dashboard.url)
    await page.waitForSelector('#connection:text("live")')
    await runtime.run(loudPlan(dir), { runId: 'ended' }).result
    await page.waitForSelector('body[data-status="failed"]')
    await page.waitForSelector('#connection:text-is("run ended")')
    expect(await page.isHidden('#controls')).toBe(true)
    await page.close()
  })

  it("opens a task's full log and error on a click; its card shows only the last lines", async () => {
    const page = await browser.newPage()
    await page.goto(dashboard.url)
    await page.waitForSelector('#cards [data-task="loud"][data-state="FAILED"]')
    expect(await page.locator('#cards [data-task="loud"] .logs li').count()).toBeLessThanOrEqual(5)
    await page.click('#cards [data-task="loud"]')
    // The whole log, from the server (the snapshot holds the last lines only).
    // Polled from the test, not in the page: the dashboard's CSP forbids the eval a string predicate needs.
    await vi.waitFor(async () => expect(await page.textContent('#detail-log')).toContain('line 1\nline 2\n'), { timeout: 30_000 })
    expect(await page.textContent('#detail-log')).toContain('line 30')
    expect(await page.textContent('#detail-error')).toContain('ERR_COMMAND_FAILED')
    await page.click('#detail-close')
    expect(await page.isHidden('#detail')).toBe(true)
    await page.close()
  })

  it('filters the task cards by id, agent, state or tag', async () => {
    const page = await browser.newPage()
    await page.goto(dashboard.url)
    await page.waitForSelector('#cards [data-task="quiet"]')
    await page.fill('#task-filter', 'failed')
    const visible = await page.locator('#cards .card:visible').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-task')))
    expect(visible).toEqual(['loud'])
    await page.close()
  })
})

describe('the drill-down API', () => {
  it("serves a worktree task's diff while its branch exists", { timeout: 120_000 }, async () => {
    const repo = tempRepo({ 'README.md': 'hello\n', '.gitignore': '.troupe/\nplan.json\n' })
    const editor = fileURLToPath(new URL('../fixtures/agents/workspace-edit.mjs', import.meta.url))
    const tasks = [{ id: 'edit', agent: editor, input: { write: { 'notes.txt': 'a new line\n' } } }]
    writeFileSync(join(repo, 'plan.json'), JSON.stringify({ name: 'diff', workspace: 'worktree', tasks }))
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: true, dir: join(repo, '.troupe') } } })
    const dashboard = await startDashboard(runtime)
    try {
      const run = runtime.run(loadPlan(join(repo, 'plan.json')), { runId: 'diffed', keepWorktrees: true })
      expect((await run.result).status).toBe('completed')
      const url = new URL(dashboard.url)
      const headers = { authorization: `Bearer ${dashboard.token}` }
      const response = await fetch(`${url.origin}/api/task-diff?run=diffed&task=edit`, { headers })
      expect(response.status).toBe(200)
      const diff = await response.text()
      expect(diff).toContain('notes.txt')
      expect(diff).toContain('+a new line')
    } finally {
      await dashboard.close()
      await runtime.close({ force: true })
    }
  })
})
