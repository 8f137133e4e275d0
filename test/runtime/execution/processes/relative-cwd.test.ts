import { mkdirSync, mkdtempSync, realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { compilePlan } from '../../../../src/runtime/plan/load-plan.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'

const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false } } })
afterAll(() => runtime.close({ force: true }))

// Regression: a relative `cwd` was resolved against the troupe process's working directory, so a plan
// worked only when run from its own directory.
it('resolves a relative cwd of a command agent against the plan directory, not the process working directory', async () => {
  const planDir = realpathSync(mkdtempSync(join(tmpdir(), 'troupe-relative-cwd-')))
  mkdirSync(join(planDir, 'packages', 'a'), { recursive: true })
  const plan = compilePlan(
    { agents: { pwd: { kind: 'command', run: ['pwd'], cwd: 'packages/{{input.pkg}}' } }, tasks: [{ id: 't', agent: 'pwd', input: { pkg: 'a' } }] },
    { baseDir: planDir },
  )
  expect(process.cwd()).not.toBe(planDir)
  const result = await runtime.run(plan).result
  expect(result.tasks.t?.output).toMatchObject({ stdout: `${join(planDir, 'packages', 'a')}\n` })
})
