import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assignSlots, renderReport } from '../../src/dashboard/report.ts'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { runPlan } from '../../src/runtime/runtime.ts'
import { formatMs } from '../../src/cli/summary.ts'
import { LAUNCH_HOOK_TIMEOUT_MS, launchChromium } from '../helpers/chromium.ts'

const agent = fileURLToPath(new URL('../fixtures/agents/sleep.mjs', import.meta.url))
const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url))

function troupe(cwd: string, ...args: string[]) {
  return spawnSync(tsx, [cli, ...args], { cwd, encoding: 'utf8', timeout: 60_000 })
}

describe('assignSlots', () => {
  it('puts each interval on the lowest slot free at its start', () => {
    expect(
      assignSlots([
        { start: 0, end: 10 },
        { start: 5, end: 15 },
        { start: 10, end: 20 },
        { start: 12, end: 14 },
      ]),
    ).toEqual([0, 1, 0, 2])
  })
})

describe('troupe report', () => {
  let browser: Browser
  let cwd: string
  let result: RunResult

  beforeAll(async () => {
    browser = await launchChromium()
    cwd = mkdtempSync(join(tmpdir(), 'troupe-report-'))
    result = await runPlan(
      {
        name: 'report-test',
        tasks: [
          { id: 'a', agent, input: { ms: 150 } },
          { id: 'b', agent, input: { ms: 200 } },
          { id: 'c', agent, input: { ms: 100 }, dependsOn: ['a'] },
          { id: 'd', agent, input: { ms: 120 }, dependsOn: ['a', 'b'] },
        ],
      },
      { runId: 'report-run', maxParallel: 2, config: { governor: { enabled: false }, checkpoint: { dir: join(cwd, '.troupe') } } },
    )
    // The journal's contract: <checkpoint.dir>/<runId>/result.json holds the final RunResult.
    // Written here too, so the report is checked against exactly this result.
    mkdirSync(join(cwd, '.troupe', 'report-run'), { recursive: true })
    writeFileSync(join(cwd, '.troupe', 'report-run', 'result.json'), JSON.stringify(result))
  }, LAUNCH_HOOK_TIMEOUT_MS)

  afterAll(async () => {
    await browser?.close()
  })

  it('writes a report that opens offline and shows the numbers of the RunResult', async () => {
    const out = join(cwd, 'report.html')
    const cli = troupe(cwd, 'report', 'report-run', '--out', out)
    expect(cli.stderr).toContain('report.html')
    expect(cli.status).toBe(0)

    const page = await browser.newPage()
    const requests: string[] = []
    page.on('request', (request) => requests.push(request.url()))
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#speedup')

    expect(requests).toEqual([pathToFileURL(out).href])
    expect(await page.textContent('#speedup .value')).toBe(`${result.speedup.toFixed(2)}x`)
    expect(await page.textContent('#elapsed .value')).toBe(formatMs(result.makespanMs))
    expect(await page.textContent('#sequential .value')).toBe(formatMs(result.sequentialMs))
    expect(await page.textContent('#verdict .value')).toBe(result.parallelization)
    expect(await page.textContent('#count-COMPLETED .value')).toBe(String(result.totals.completed))
    const bars = await page.locator('#timeline [data-task]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-task')))
    expect(bars.sort()).toEqual(['a', 'b', 'c', 'd'])
    await page.close()
  })

  it("shows each agent's estimate and the time tasks were held in a finished run's governor panel", async () => {
    const governor = {
      mode: 'threshold',
      throttledMs: 0,
      throttleEvents: 0,
      peakCpuPercent: 100,
      peakMemoryMb: 900,
      samples: 12,
      heldMs: { cpu: 1500, memory: 0 },
      agents: { analyse: { cpu: 0.97, memoryMb: 420, samples: 5, source: 'measured' }, llm: { cpu: 0.02, samples: 0, source: 'plan' } },
    }
    const out = join(cwd, 'estimates.html')
    writeFileSync(out, renderReport({ ...result, governor } as RunResult))
    const page = await browser.newPage()
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#governor-agents')
    expect(await page.textContent('#governor-held-time')).toBe('tasks held: 1.50 s for CPU, 0 ms for memory')
    const rows = await page.locator('#governor-agents tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
    expect(rows).toEqual([
      ['analyse', '~0.97 cores', '~420 MB', 'measured, 5 attempts'],
      ['llm', '~0.02 cores', '—', 'plan'],
    ])
    await page.close()
  })

  it('shows the governor figures, task outputs and logs, and no maxParallel control', async () => {
    const withGovernor = { ...result, governor: { mode: 'threshold', throttledMs: 1200, throttleEvents: 2, peakCpuPercent: 93, peakMemoryMb: 512, samples: 40 } } as RunResult
    const withOutput = { ...withGovernor, tasks: { ...withGovernor.tasks, a: { ...withGovernor.tasks.a!, output: { answer: 42 } } } }
    const out = join(cwd, 'rich.html')
    writeFileSync(out, renderReport(withOutput, { logs: { a: ['first line', 'second line'] } }))
    const page = await browser.newPage()
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#speedup')
    expect(await page.textContent('#governor-report')).toContain('throttled 1.20 s in 2 periods · peak CPU 93 %')
    expect(await page.textContent('[data-task="a"] .output')).toContain('"answer": 42')
    expect(await page.locator('[data-task="a"] .logs li').allTextContents()).toEqual(['first line', 'second line'])
    expect(await page.locator('#controls').count()).toBe(0)
    await page.close()
  })

  it("shows a worktree task's branch, diff size and merge result, and the worker it ran on", async () => {
    const workspace = { branch: 'troupe/r/a', filesChanged: 3, insertions: 10, deletions: 2, merge: 'merged' as const }
    const withWorkspace = { ...result, tasks: { ...result.tasks, a: { ...result.tasks.a!, workspace, worker: 'gpu-box-1' } } } as RunResult
    const out = join(cwd, 'workspace.html')
    writeFileSync(out, renderReport(withWorkspace))
    const page = await browser.newPage()
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#cards [data-task]')
    expect(await page.textContent('[data-task="a"] .workspace')).toBe('troupe/r/a · 3 files +10 −2 · merged')
    expect(await page.textContent('[data-task="a"] .worker')).toBe('ran on gpu-box-1')
    await page.close()
  })

  it('marks a task whose output came from the task cache "cached" on its card', async () => {
    const withCached = { ...result, tasks: { ...result.tasks, a: { ...result.tasks.a!, cached: true } } } as RunResult
    const out = join(cwd, 'cached.html')
    writeFileSync(out, renderReport(withCached))
    const page = await browser.newPage()
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#cards [data-task]')
    expect(await page.textContent('[data-task="a"] .agent')).toMatch(/ · cached$/)
    expect(await page.textContent('[data-task="b"] .agent')).not.toContain('cached')
    await page.close()
  })

  it('shows a hostile task id as text: it cannot close the data script or inject markup', async () => {
    const id = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    const hostile = { ...result, tasks: { [id]: { state: 'FAILED', attempts: 1, error: { code: 'ERR_TASK_FAILED', message: '<b>bold</b>' } } } } as unknown as RunResult
    const out = join(cwd, 'hostile.html')
    writeFileSync(out, renderReport(hostile))
    const page = await browser.newPage()
    await page.goto(pathToFileURL(out).href)
    await page.waitForSelector('#cards [data-task]')
    expect(await page.evaluate('typeof window.pwned')).toBe('undefined')
    expect(await page.textContent('#cards .card strong')).toBe(id)
    expect(await page.locator('#cards b').count()).toBe(0)
    await page.close()
  })

  it('embeds everything it needs: no script, style or image is loaded by reference', () => {
    const out = join(cwd, 'inline.html')
    expect(troupe(cwd, 'report', 'report-run', '--out', out).status).toBe(0)
    const html = readFileSync(out, 'utf8')
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|<img[^>]+src=/)
    expect(html).toContain('id="troupe-data"')
  })

  it('exits 2 naming the run when no finished run has that id', () => {
    const cli = troupe(cwd, 'report', 'no-such-run')
    expect(cli.status).toBe(2)
    expect(cli.stderr).toContain('No finished run "no-such-run"')
    expect(cli.stderr).toContain('report-run')
    expect(cli.stderr).toContain('[ERR_ARGUMENT_INVALID]')
  })

  it('exits 2 for a run id that would leave the journal directory', () => {
    const cli = troupe(cwd, 'report', '../etc')
    expect(cli.status).toBe(2)
    expect(cli.stderr).toContain('[ERR_ARGUMENT_INVALID]')
  })
})
