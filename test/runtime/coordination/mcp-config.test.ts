import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cliMcpConfig } from '../../../src/runtime/coordination/mcp-config.ts'

const url = 'http://127.0.0.1:4321/mcp/token'
const root = mkdtempSync(join(tmpdir(), 'troupe-mcp-config-'))
const scratch = join(root, 'scratch')
const ours = join(scratch, 'gemini-system-defaults.json')
/** An environment whose Gemini system settings live in `dir` (so no machine-wide file is read). */
const geminiEnv = (dir: string) => ({ GEMINI_CLI_SYSTEM_SETTINGS_PATH: join(root, dir, 'settings.json') })

afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('cliMcpConfig: the troupe server in each CLI’s own configuration', () => {
  // -p mode denies tools no rule allows: every troupe tool is allowed.
  it('claude-code: --mcp-config names a file (the URL is never in argv) with an http server named troupe, its tools allowed', async () => {
    const tools = 'mcp__troupe__claim_files,mcp__troupe__release_files,mcp__troupe__report_progress,mcp__troupe__log,mcp__troupe__scratchpad_read,mcp__troupe__scratchpad_append,mcp__troupe__add_tasks'
    const file = join(scratch, 'claude-mcp.json')
    const config = await cliMcpConfig('claude-code', url, scratch, {})
    const text = `{"mcpServers":{"troupe":{"type":"http","url":"${url}"}}}`
    expect(config).toEqual({ args: ['--mcp-config', file, '--allowedTools', tools], env: {}, files: { [file]: text } })
    expect(config.args.join(' ')).not.toContain(url)
  })

  it('codex: -c overrides for a Streamable HTTP server, approved, because codex exec declines unapproved tool calls', async () => {
    expect(await cliMcpConfig('codex', url, scratch, {})).toEqual({ args: ['-c', `mcp_servers.troupe.url="${url}"`, '-c', 'mcp_servers.troupe.default_tools_approval_mode="approve"'], env: {}, files: {} })
  })

  it('gemini: system defaults with a trusted httpUrl server, because headless Gemini denies untrusted tools', async () => {
    const config = await cliMcpConfig('gemini', url, scratch, geminiEnv('none'))
    expect(config.args).toEqual([])
    expect(config.env).toEqual({ GEMINI_CLI_SYSTEM_DEFAULTS_PATH: ours })
    expect(Object.keys(config.files)).toEqual([ours])
    expect(JSON.parse(config.files[ours]!)).toEqual({ mcpServers: { troupe: { httpUrl: url, trust: true } } })
  })

  it('gemini: the system settings an administrator set stay where they are (their path is not moved)', async () => {
    const config = await cliMcpConfig('gemini', url, scratch, geminiEnv('none'))
    expect(Object.keys(config.env)).not.toContain('GEMINI_CLI_SYSTEM_SETTINGS_PATH')
  })

  it('gemini: the system defaults in effect (next to the system settings) are kept, comments allowed, with troupe added', async () => {
    const dir = join(root, 'etc')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'system-defaults.json'), '{\n  // the team default\n  "general": { "vimMode": true },\n  "mcpServers": { "docs": { "httpUrl": "http://docs/mcp" } } /* kept */\n}\n')
    const config = await cliMcpConfig('gemini', url, scratch, geminiEnv('etc'))
    expect(JSON.parse(config.files[ours]!)).toEqual({ general: { vimMode: true }, mcpServers: { docs: { httpUrl: 'http://docs/mcp' }, troupe: { httpUrl: url, trust: true } } })
  })

  it('gemini: system defaults named by GEMINI_CLI_SYSTEM_DEFAULTS_PATH are the ones kept', async () => {
    const file = join(root, 'defaults.json')
    writeFileSync(file, '{ "mcp": { "serverCommand": "x" }, "note": "a // not a comment" }')
    const config = await cliMcpConfig('gemini', url, scratch, { ...geminiEnv('none'), GEMINI_CLI_SYSTEM_DEFAULTS_PATH: file })
    expect(JSON.parse(config.files[ours]!)).toEqual({ mcp: { serverCommand: 'x' }, note: 'a // not a comment', mcpServers: { troupe: { httpUrl: url, trust: true } } })
  })

  it('gemini: system defaults that are not valid JSON are an error naming the file (as in the CLI)', async () => {
    const file = join(root, 'broken.json')
    writeFileSync(file, '{ "mcpServers": ')
    await expect(cliMcpConfig('gemini', url, scratch, { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: file })).rejects.toThrow(`Gemini CLI system defaults ${file} are not valid JSON`)
  })
})
