import { mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parse } from 'smol-toml'
import { cliMcpConfig, writeCliMcpConfig } from '../../../src/runtime/coordination/mcp-config.ts'

const url = 'http://127.0.0.1:4321/mcp/token'
const root = mkdtempSync(join(tmpdir(), 'troupe-mcp-config-'))
const scratch = join(root, 'scratch')

afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('cliMcpConfig: the troupe server in each CLI’s own configuration', () => {
  // -p mode denies tools no rule allows: every troupe tool is allowed.
  it('claude-code: --mcp-config names a file (the URL is never in argv) with an http server named troupe, its tools allowed', async () => {
    const tools = 'mcp__troupe__claim_files,mcp__troupe__release_files,mcp__troupe__report_progress,mcp__troupe__log,mcp__troupe__scratchpad_read,mcp__troupe__scratchpad_append,mcp__troupe__add_tasks,' +
      'mcp__troupe__wait_tasks,mcp__troupe__send_message,mcp__troupe__read_messages'
    const file = join(scratch, 'claude-mcp.json')
    const config = await cliMcpConfig('claude-code', url, scratch, {})
    const text = `{"mcpServers":{"troupe":{"type":"http","url":"${url}"}}}`
    expect(config).toEqual({ args: ['--mcp-config', file, '--allowedTools', tools], env: {}, files: { [file]: text }, links: {} })
    expect(config.args.join(' ')).not.toContain(url)
  })

  it('codex: no argument carries the URL; CODEX_HOME is the attempt dir, config.toml the user’s plus an approved troupe', async () => {
    const home = join(root, 'codex-user')
    mkdirSync(join(home, 'sessions'), { recursive: true })
    writeFileSync(join(home, 'auth.json'), '{}')
    writeFileSync(
      join(home, 'config.toml'),
      'model = "o4"\nmodel_provider = "proxy"\n\n[model_providers.proxy]\nbase_url = "http://proxy/v1"\nwire_api = "responses"\n\n' +
        '[mcp_servers.docs]\nurl = "http://docs/mcp"\n',
    )
    const config = await cliMcpConfig('codex', url, scratch, { CODEX_HOME: home })
    expect(config.args).toEqual([])
    expect(config.env).toEqual({ CODEX_HOME: scratch })
    expect(Object.keys(config.files)).toEqual([join(scratch, 'config.toml')])
    expect(parse(config.files[join(scratch, 'config.toml')]!)).toEqual({
      model: 'o4',
      model_provider: 'proxy',
      model_providers: { proxy: { base_url: 'http://proxy/v1', wire_api: 'responses' } },
      mcp_servers: { docs: { url: 'http://docs/mcp' }, troupe: { url, default_tools_approval_mode: 'approve' } },
    })
    expect(config.links).toEqual({
      [join(scratch, 'auth.json')]: join(home, 'auth.json'),
      [join(scratch, 'sessions')]: join(home, 'sessions'),
    })
  })

  it('codex: without a Codex home (~/.codex from HOME) the config holds the troupe server alone, and links ~/.codex/sessions', async () => {
    const config = await cliMcpConfig('codex', url, scratch, { HOME: join(root, 'nobody') })
    expect(parse(config.files[join(scratch, 'config.toml')]!)).toEqual({
      mcp_servers: { troupe: { url, default_tools_approval_mode: 'approve' } },
    })
    // Sessions outlive the attempt's home, so that a repair can resume them (regression: "no rollout found for thread id").
    expect(config.links).toEqual({ [join(scratch, 'sessions')]: join(root, 'nobody', '.codex', 'sessions') })
  })

  it('codex: a config.toml that is not valid TOML is an error naming the file', async () => {
    const home = join(root, 'codex-broken')
    mkdirSync(home, { recursive: true })
    writeFileSync(join(home, 'config.toml'), 'model = \n')
    await expect(cliMcpConfig('codex', url, scratch, { CODEX_HOME: home })).rejects.toThrow(
      `Codex config ${join(home, 'config.toml')} is not valid TOML`,
    )
  })

  it('gemini: no argument carries the URL; GEMINI_CLI_HOME is the attempt dir, the user’s settings plus a trusted troupe', async () => {
    const home = join(root, 'gemini-user')
    mkdirSync(join(home, '.gemini', 'extensions'), { recursive: true })
    writeFileSync(join(home, '.gemini', 'oauth_creds.json'), '{}')
    writeFileSync(
      join(home, '.gemini', 'settings.json'),
      '{\n  // the team default\n  "security": { "auth": { "selectedType": "gemini-api-key" } },\n' +
        '  "mcpServers": { "docs": { "httpUrl": "http://docs/mcp" } } /* kept */\n}\n',
    )
    const config = await cliMcpConfig('gemini', url, scratch, { HOME: home })
    const settings = join(scratch, '.gemini', 'settings.json')
    expect(config.args).toEqual([])
    expect(config.env).toEqual({ GEMINI_CLI_HOME: scratch })
    expect(Object.keys(config.files)).toEqual([settings])
    expect(JSON.parse(config.files[settings]!)).toEqual({
      security: { auth: { selectedType: 'gemini-api-key' } },
      mcpServers: { docs: { httpUrl: 'http://docs/mcp' }, troupe: { httpUrl: url, trust: true } },
    })
    expect(config.links).toEqual({
      [join(scratch, '.gemini', 'extensions')]: join(home, '.gemini', 'extensions'),
      [join(scratch, '.gemini', 'oauth_creds.json')]: join(home, '.gemini', 'oauth_creds.json'),
      // Chats outlive the attempt's home, so that a repair can resume them.
      [join(scratch, '.gemini', 'tmp')]: join(home, '.gemini', 'tmp'),
    })
  })

  it('gemini: the user’s GEMINI_CLI_HOME wins over HOME', async () => {
    const home = join(root, 'gemini-cli-home')
    mkdirSync(join(home, '.gemini'), { recursive: true })
    writeFileSync(join(home, '.gemini', 'settings.json'), '{ "general": { "vimMode": true } }')
    const config = await cliMcpConfig('gemini', url, scratch, { HOME: join(root, 'nobody'), GEMINI_CLI_HOME: home })
    expect(JSON.parse(config.files[join(scratch, '.gemini', 'settings.json')]!)).toEqual({
      general: { vimMode: true },
      mcpServers: { troupe: { httpUrl: url, trust: true } },
    })
  })

  it('gemini: settings that are not valid JSON are an error naming the file (as in the CLI)', async () => {
    const home = join(root, 'gemini-broken')
    mkdirSync(join(home, '.gemini'), { recursive: true })
    writeFileSync(join(home, '.gemini', 'settings.json'), '{ "mcpServers": ')
    await expect(cliMcpConfig('gemini', url, scratch, { HOME: home })).rejects.toThrow(
      `Gemini CLI settings ${join(home, '.gemini', 'settings.json')} are not valid JSON`,
    )
  })

  it('writeCliMcpConfig: files are 0600 in 0700 directories, links point at the user’s entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-mcp-write-'))
    try {
      const file = join(dir, '.gemini', 'settings.json')
      await writeCliMcpConfig({
        args: [],
        env: {},
        files: { [file]: '{}' },
        links: { [join(dir, '.gemini', 'creds')]: join(root, 'target') },
      })
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(statSync(join(dir, '.gemini')).mode & 0o777).toBe(0o700)
      expect(readlinkSync(join(dir, '.gemini', 'creds'))).toBe(join(root, 'target'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
