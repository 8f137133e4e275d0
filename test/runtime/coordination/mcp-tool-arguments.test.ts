import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClaimRegistry } from '../../../src/runtime/admission/claims.ts'
import { McpToolServer } from '../../../src/runtime/coordination/mcp-server.ts'
import { Scratchpad } from '../../../src/runtime/coordination/scratchpad.ts'
import { RUN_TOOL_NAMES } from '../../../src/runtime/coordination/tool-arguments.ts'

// A real MCP client (the official SDK's) sends invalid arguments to each run tool; the error
// text it gets back names the argument, what is allowed and what was received, and nothing happens.
const server = new McpToolServer()
const registry = new ClaimRegistry()
const effects: string[] = []
let scratchpad: Scratchpad
let client: Client

beforeAll(async () => {
  scratchpad = await Scratchpad.open(undefined)
  const endpoint = await server.bind({
    runId: 'r',
    taskId: 'a',
    claim: (path) => {
      effects.push(`claim ${path}`)
      return registry.claim('r', 'a', path)
    },
    release: (path) => void effects.push(`release ${path}`),
    progress: (fraction) => void effects.push(`progress ${fraction}`),
    log: (message) => void effects.push(`log ${message}`),
    scratchpad,
    addTasks: async (tasks) => {
      effects.push(`add ${tasks.length}`)
      return { added: [] }
    },
  })
  client = new Client({ name: 'test', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint.url)))
})

afterAll(async () => {
  await client.close()
  await server.close()
})

async function refused(name: string, args: Record<string, unknown>): Promise<string> {
  const result = (await client.callTool({ name, arguments: args })) as { isError?: boolean; content: { type: string; text: string }[] }
  expect(result.isError).toBe(true)
  return result.content.map((block) => block.text).join('')
}

const paths = 'Expected `paths` to be a list of 1 to 1000 file paths or globs'
const eachPath = 'Expected each of `paths` to be a file path or glob: a non-empty string of at most 4096 characters'

describe('run tool names', () => {
  it('the server lists exactly RUN_TOOL_NAMES (the names the CLIs are told to allow)', async () => {
    expect((await client.listTools()).tools.map((tool) => tool.name).sort()).toEqual([...RUN_TOOL_NAMES].sort())
  })

  it('the input schemas the client sees keep the limits the errors name', async () => {
    const schemas = Object.fromEntries((await client.listTools()).tools.map((tool) => [tool.name, tool.inputSchema.properties]))
    expect(schemas.claim_files).toEqual({ paths: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 4096 } } })
    expect(schemas.report_progress).toMatchObject({ fraction: { type: 'number', minimum: 0, maximum: 1 }, message: { type: 'string', maxLength: 2000 } })
    expect(schemas.scratchpad_append).toEqual({ text: { type: 'string', minLength: 1, maxLength: 8000 } })
  })
})

describe('run tool arguments are validated with a clear error (MCP client)', () => {
  it('claim_files with an empty list', async () => {
    expect(await refused('claim_files', { paths: [] })).toContain(`${paths}, got \`[]\` (an empty list) at paths`)
  })

  it('claim_files with a non-string path', async () => {
    expect(await refused('claim_files', { paths: ['src/a.ts', 42] })).toContain(`${eachPath}, got \`42\` (number) at paths[1]`)
  })

  it('claim_files without paths', async () => {
    expect(await refused('claim_files', {})).toContain(`${paths}, got nothing at paths`)
  })

  it('release_files with a path given as a string instead of a list', async () => {
    expect(await refused('release_files', { paths: 'src/a.ts' })).toContain(`${paths}, got \`"src/a.ts"\` (string) at paths`)
  })

  it('report_progress with fraction 2', async () => {
    expect(await refused('report_progress', { fraction: 2 })).toContain('Expected `fraction` to be a number from 0 to 1, got `2` (number) at fraction')
  })

  it('report_progress with a fraction given as a string', async () => {
    expect(await refused('report_progress', { fraction: '0.5' })).toContain('Expected `fraction` to be a number from 0 to 1, got `"0.5"` (string) at fraction')
  })

  it('scratchpad_append with 9,000 characters', async () => {
    expect(await refused('scratchpad_append', { text: 'x'.repeat(9_000) })).toContain('Expected `text` to be a non-empty note of at most 8000 characters, got a string of 9000 characters at text')
  })

  it('scratchpad_append with an empty note', async () => {
    expect(await refused('scratchpad_append', { text: '' })).toContain('Expected `text` to be a non-empty note of at most 8000 characters, got `""` (string) at text')
  })

  it('log with a number', async () => {
    expect(await refused('log', { message: 7 })).toContain('Expected `message` to be a non-empty string of at most 8000 characters, got `7` (number) at message')
  })

  it('add_tasks with a task that is not an object', async () => {
    expect(await refused('add_tasks', { tasks: ['build'] })).toContain('Expected each of `tasks` to be an object with the fields of a plan task, got `"build"` (string) at tasks[0]')
  })

  it('the error text names the tool', async () => {
    expect(await refused('claim_files', { paths: [] })).toMatch(/Invalid arguments for tool claim_files/)
  })

  it('an invalid call has no effect: nothing claimed, released, reported, logged, noted or added', async () => {
    await refused('claim_files', { paths: ['src/b.ts', 42] })
    await refused('scratchpad_append', { text: 'x'.repeat(9_000) })
    expect(effects).toEqual([])
    expect(scratchpad.size).toBe(0)
    expect(registry.claim('r', 'b', 'src/b.ts')).toMatchObject({ granted: true })
  })
})
