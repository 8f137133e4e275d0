import { describe, expect, it } from 'vitest'
import { cliMcpConfig } from '../../../src/runtime/coordination/mcp-config.ts'

const url = 'http://127.0.0.1:4321/mcp/token'

describe('cliMcpConfig: the troupe server in each CLI’s own configuration', () => {
  it('claude-code: --mcp-config with an http server named troupe', () => {
    expect(cliMcpConfig('claude-code', url, '/scratch')).toEqual({ args: ['--mcp-config', `{"mcpServers":{"troupe":{"type":"http","url":"${url}"}}}`], env: {}, files: {} })
  })

  it('codex: -c overrides for a Streamable HTTP server, approved, because codex exec declines unapproved tool calls', () => {
    expect(cliMcpConfig('codex', url, '/scratch')).toEqual({ args: ['-c', `mcp_servers.troupe.url="${url}"`, '-c', 'mcp_servers.troupe.default_tools_approval_mode="approve"'], env: {}, files: {} })
  })

  it('gemini: a system settings file with a trusted httpUrl server, because headless Gemini denies untrusted tools', () => {
    const config = cliMcpConfig('gemini', url, '/scratch')
    expect(config.args).toEqual([])
    expect(config.env).toEqual({ GEMINI_CLI_SYSTEM_SETTINGS_PATH: '/scratch/gemini-settings.json' })
    expect(Object.keys(config.files)).toEqual(['/scratch/gemini-settings.json'])
    expect(JSON.parse(config.files['/scratch/gemini-settings.json']!)).toEqual({ mcpServers: { troupe: { httpUrl: url, trust: true } } })
  })
})
