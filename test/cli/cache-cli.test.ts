import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { RunResult } from '../../src/runtime/report/result.ts'
import { runCli } from '../helpers/cli.ts'

/** 50 cached tasks in a DAG (each of tasks 10… depends on two earlier ones); every agent run appends a line to ran.log. */
function fiftyTaskPlan(dir: string): string {
  const tasks = Array.from({ length: 50 }, (_, i) => {
    const deps = i < 10 ? [] : [`t${i - 10}`, `t${i - 7}`]
    return `  - { id: t${i}, agent: work, cache: true, inputs: [src/*.txt]${deps.length ? `, dependsOn: [${deps.join(', ')}]` : ''} }`
  })
  const plan = [
    'name: fifty',
    'agents:',
    '  work: { kind: command, run: [sh, -c, \'echo "$1" >> ran.log; cat src/input.txt\', sh, "{{task.id}}"] }',
    'tasks:',
    ...tasks,
  ].join('\n')
  writeFileSync(join(dir, 'plan.yaml'), `${plan}\n`)
  return join(dir, 'plan.yaml')
}

const ranLines = (dir: string) =>
  existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').split('\n').filter(Boolean).length : 0

describe('troupe run with cached tasks', () => {
  it('a second run of an unchanged 50-task plan runs no agent; --no-cache runs them all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-cache-cli-'))
    mkdirSync(join(dir, 'src'))
    writeFileSync(join(dir, 'src', 'input.txt'), 'hello\n')
    const plan = fiftyTaskPlan(dir)
    const first = await runCli(['run', plan, '--json', '--quiet'], { cwd: dir })
    expect(first.code).toBe(0)
    expect(ranLines(dir)).toBe(50)

    const second = await runCli(['run', plan, '--json', '--quiet'], { cwd: dir })
    expect(second.code).toBe(0)
    expect(ranLines(dir)).toBe(50)
    const result = JSON.parse(second.stdout) as RunResult
    expect(result.totals).toMatchObject({ tasks: 50, completed: 50, cached: 50 })

    const summary = await runCli(['run', plan, '--no-progress'], { cwd: dir })
    expect(summary.stderr).toMatch(/✓ completed t0 \(cached\)/)
    expect(summary.stderr).toMatch(/50\/50 tasks completed,[\s\S]*50 cached/)
    const runs = await runCli(['runs'], { cwd: dir })
    expect(runs.stdout).toContain('50/50 (50 cached)')

    const uncached = await runCli(['run', plan, '--json', '--quiet', '--no-cache'], { cwd: dir })
    expect(uncached.code).toBe(0)
    expect((JSON.parse(uncached.stdout) as RunResult).totals.cached).toBe(0)
    expect(ranLines(dir)).toBe(100)
  }, 180_000)
})
