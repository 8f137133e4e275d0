import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { jsonSchema } from '../../src/cli/json-schema.ts'
import { runCli } from '../helpers/cli.ts'

const root = join(import.meta.dirname, '..', '..')
const committed = (name: string) => JSON.parse(readFileSync(join(root, 'schema', `${name}.schema.json`), 'utf8')) as unknown
const validator = (name: 'plan' | 'config') => new Ajv2020({ strict: false, allErrors: true }).compile(jsonSchema(name))
const examplePlans = readdirSync(join(root, 'examples'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => join(root, 'examples', entry.name, 'plan.yaml'))

describe('troupe schema', { timeout: 90_000 }, () => {
  it('prints the plan schema by default, equal to the committed schema/plan.schema.json (regenerate: npm run schema)', async () => {
    const { code, stdout } = await runCli(['schema'])
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual(committed('plan'))
  })

  it('prints the config schema, equal to the committed schema/config.schema.json (regenerate: npm run schema)', async () => {
    const { code, stdout } = await runCli(['schema', 'config'])
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual(committed('config'))
  })

  it('refuses an unknown schema name with exit 2', async () => {
    const { code, stderr } = await runCli(['schema', 'plans'])
    expect(code).toBe(2)
    expect(stderr).toContain("Allowed choices are plan, config")
  })

  it.each(examplePlans)('accepts the example %s', (file) => {
    const validate = validator('plan')
    expect(validate(parse(readFileSync(file, 'utf8'))), JSON.stringify(validate.errors)).toBe(true)
  })

  const exampleConfigs = readdirSync(join(root, 'examples'))
    .map((dir) => join(root, 'examples', dir, 'troupe.config.json'))
    .filter((file) => existsSync(file))
  it.each(exampleConfigs)(
    'accepts the example config %s',
    (file) => {
      const validate = validator('config')
      expect(validate(JSON.parse(readFileSync(file, 'utf8'))), JSON.stringify(validate.errors)).toBe(true)
    },
  )

  it('gives every example plan the yaml-language-server header pointing at the committed schema', () => {
    const header = '# yaml-language-server: $schema=../../schema/plan.schema.json'
    for (const file of examplePlans) expect(readFileSync(file, 'utf8').split('\n')[0], file).toBe(header)
  })

  it('rejects a misspelt task key, an unknown agent kind and a timeout out of range', () => {
    const validate = validator('plan')
    const plan = (task: Record<string, unknown>, agent: Record<string, unknown> = { kind: 'command', run: 'true' }) => ({
      agents: { a: agent },
      tasks: [{ id: 't', agent: 'a', ...task }],
    })
    expect(validate(plan({}))).toBe(true)
    expect(validate(plan({ dependson: [] }))).toBe(false)
    expect(validate(plan({}, { kind: 'comand', run: 'true' }))).toBe(false)
    expect(validate(plan({ timeoutMs: 2_147_483_648 }))).toBe(false)
    expect(validate({ tasks: [] })).toBe(false)
  })

  it('accepts a config with $schema and rejects an unknown key', () => {
    const validate = validator('config')
    expect(validate({ $schema: './config.schema.json', maxParallel: 4, budget: { maxCostUsd: null } })).toBe(true)
    expect(validate({ maxparallel: 4 })).toBe(false)
  })
})
