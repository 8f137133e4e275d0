import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'

/** Regression (#22.1): values were pasted raw into `/bin/sh -c`, so input, a dependency's stdout or a spawned task id ran as code. */

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({
    config: { maxParallel: 4, pool: { minThreads: 1, maxThreads: 2 }, governor: { enabled: false }, checkpoint: { enabled: false } },
  })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

/** Prints the arguments it received as JSON, so a test can see how many words the shell made. */
const ARGS = `node -e 'console.log(JSON.stringify(process.argv.slice(1)))'`
const SPAWN = resolve('test/fixtures/agents/spawn.mjs')

const argsOf = (output: unknown): unknown => JSON.parse((output as { stdout: string }).stdout)

describe('shell-form command agents with hostile values', () => {
  it.each(['x; touch FILE', '$(touch FILE)', '`touch FILE`'])('passes input %j as one argument and runs nothing', async (name) => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-inject-'))
    const agents = { x: { kind: 'command', run: `${ARGS} {{input.name}}`, cwd: dir } }
    const plan = { name: 'inject', agents, tasks: [{ id: 't', agent: 'x', input: { name } }] } as Plan
    const result = await runtime.run(plan).result
    expect(argsOf(result.tasks.t?.output)).toEqual([name])
    expect(readdirSync(dir)).toEqual([])
  })

  it("passes a dependency's stdout holding backticks as one argument and runs nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-inject-'))
    const plan = {
      name: 'inject-deps',
      agents: {
        a: { kind: 'command', run: ['printf', '%s', '`touch FILE` $(touch FILE2)'] },
        b: { kind: 'command', run: `${ARGS} "{{deps.a.output.stdout}}"`, cwd: dir },
      },
      tasks: [{ id: 'a', agent: 'a' }, { id: 'b', agent: 'b', dependsOn: ['a'] }],
    } as Plan
    const result = await runtime.run(plan).result
    expect(argsOf(result.tasks.b?.output)).toEqual(['`touch FILE` $(touch FILE2)'])
    expect(readdirSync(dir)).toEqual([])
  })

  it('passes a spawned task id holding a payload as one argument and runs nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-inject-'))
    const id = 'c;touch${IFS}FILE'
    const plan = {
      name: 'inject-spawn',
      agents: { lead: SPAWN, x: { kind: 'command', run: `${ARGS} {{task.id}}`, cwd: dir } },
      tasks: [{ id: 'lead', agent: 'lead', input: { children: [{ id, agent: 'x' }], wait: true } }],
    } as Plan
    const result = await runtime.run(plan).result
    const child = Object.entries(result.tasks).find(([key]) => key !== 'lead')
    expect(child?.[1]).toMatchObject({ state: 'COMPLETED' })
    expect(argsOf(child?.[1]?.output)).toEqual([child?.[0]])
    expect(child?.[0]).toContain(id)
    expect(existsSync(join(dir, 'FILE'))).toBe(false)
  })
})
