import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Conditions } from '../../src/actors/conditions.ts'
import type { CompiledTask, Plan, TaskSpec } from '../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { runCli } from '../helpers/cli.ts'

const agents = join(import.meta.dirname, '..', 'fixtures', 'agents')
const echo = join(agents, 'echo.mjs')
const task = (id: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ id, agent: echo, ...extra })

let runtime: Runtime | undefined
afterEach(async () => {
  await runtime?.close({ force: true })
  runtime = undefined
})

function run(plan: Plan) {
  runtime = createRuntime({ config: { maxParallel: 2, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } } })
  return runtime.run(plan).result
}

/** `check` returns `{ input: { ok } }`; `yes` runs when ok, `no` when not. */
const branches = (ok: boolean): Plan => ({
  name: 'branches',
  tasks: [
    task('check', { input: { ok } }),
    task('yes', { dependsOn: ['check'], when: 'deps.check.output.input.ok == true' }),
    task('no', { dependsOn: ['check'], when: 'deps.check.output.input.ok != true' }),
  ],
})

describe('when conditions at run time', () => {
  it('runs the true branch and skips the false one with ERR_CONDITION_FALSE naming the expression', async () => {
    const result = await run(branches(true))
    expect(result.tasks.yes!.state).toBe('COMPLETED')
    expect(result.tasks.no).toMatchObject({ state: 'SKIPPED', attempts: 0, error: { code: 'ERR_CONDITION_FALSE' } })
    expect(result.tasks.no!.error!.message).toContain('deps.check.output.input.ok != true')
  })

  it('evaluates against the task input', async () => {
    const result = await run({ name: 'input', tasks: [task('a', { input: { env: 'prod' }, when: "input.env != 'prod'" })] })
    expect(result.tasks.a!.state).toBe('SKIPPED')
  })

  it('skips the dependents of a false branch with ERR_CONDITION_FALSE, transitively', async () => {
    const plan = branches(true)
    const result = await run({ ...plan, tasks: [...plan.tasks, task('after-no', { dependsOn: ['no'] }), task('deeper', { dependsOn: ['after-no'] })] })
    expect(result.tasks['after-no']).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_CONDITION_FALSE' } })
    expect(result.tasks['after-no']!.error!.message).toContain('"no"')
    expect(result.tasks.deeper).toMatchObject({ state: 'SKIPPED', error: { code: 'ERR_CONDITION_FALSE' } })
  })

  it('a dependent with its own when treats a condition-skipped dependency as satisfied, with output undefined', async () => {
    const plan = branches(true)
    const result = await run({
      ...plan,
      tasks: [...plan.tasks, task('join', { dependsOn: ['yes', 'no'], when: "!deps.no.output && deps.yes.output.taskId == 'yes'" })],
    })
    expect(result.tasks.join!.state).toBe('COMPLETED')
    expect(result.status).toBe('completed')
  })

  it('a run whose only unfinished tasks were skipped by conditions ends completed, counting them as skipped', async () => {
    const result = await run(branches(false))
    expect(result.status).toBe('completed')
    expect(result.totals).toMatchObject({ tasks: 3, completed: 2, skipped: 1 })
  })

  it('an expression that throws at run time fails the task with ERR_PLAN_INVALID naming it', () => {
    // jexl forgives missing properties; an unknown transform (which linkPlan rejects) is a way to make it throw.
    const conditional = { id: 'b', when: 'deps.a.output|nope', deps: [0], input: undefined } as unknown as CompiledTask
    const outcome = new Conditions().decide(conditional, () => ({}), () => 'a')
    expect(outcome).toMatchObject({ verdict: 'fail', error: { code: 'ERR_PLAN_INVALID' } })
    expect(outcome.verdict !== 'run' && outcome.error.message).toContain('deps.a.output|nope')
  })

  it('CLI: a run with condition-skips only exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-when-'))
    writeFileSync(
      join(dir, 'plan.yaml'),
      `tasks:\n  - { id: a, agent: ${echo}, input: { ok: false } }\n  - { id: b, agent: ${echo}, dependsOn: [a], when: "deps.a.output.input.ok" }\n`,
    )
    const { code, stderr } = await runCli(['run', 'plan.yaml', '--json'], { cwd: dir })
    expect(stderr).not.toContain('Error')
    expect(code).toBe(0)
  })
})
