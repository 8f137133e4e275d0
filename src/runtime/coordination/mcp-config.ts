import { readFile } from 'node:fs/promises'
import { platform } from 'node:os'
import { dirname, join } from 'node:path'
import type { CliKind } from '../plan/agent-spec.ts'
import { RUN_TOOL_NAMES } from './tool-arguments.ts'

/** How to hand a CLI agent the run's MCP server: extra arguments, variables and files. */
export interface CliMcpConfig {
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  /** Files to write before the CLI starts (and remove after), by absolute path. */
  readonly files: Readonly<Record<string, string>>
}

/** The name of the run's MCP server in every CLI's configuration. */
const MCP_SERVER_NAME = 'troupe'

/**
 * The `troupe` MCP server in each CLI's own configuration format. Each CLI runs headless, where
 * nobody can approve a tool call, so the server is also marked trusted in the CLI's own terms
 * (the URL is the attempt's own and dies with it):
 *
 * - Claude Code: `--mcp-config <file>`, the file (0600, in the attempt's own 0700 directory)
 *   holding `{"mcpServers":{"troupe":{"type":"http","url":…}}}`: the URL is the attempt's
 *   credential, so it is never in argv (`/proc/<pid>/cmdline` is readable by every local user);
 *   and `--allowedTools mcp__troupe__claim_files,…`:
 *   in `-p` mode a tool call no permission rule allows is denied ("Claude requested permissions
 *   to use …"). Each tool is named, as the server-wide `mcp__troupe` rule did not cover its
 *   tools in some versions (anthropics/claude-code#13815).
 * - Codex: `-c mcp_servers.troupe.url="…"` — `-c key=value` sets a dotted key of config.toml and
 *   parses the value as TOML (codex-rs/common/src/config_override.rs); a server with `url` is a
 *   Streamable HTTP server (codex-rs/config/src/mcp_types.rs, `RawMcpServerConfig`), with no
 *   feature flag since openai/codex#4689. `codex exec` declines every call to a tool without
 *   `readOnlyHint` ("user cancelled MCP tool call", openai/codex#16043) unless the server says
 *   `default_tools_approval_mode = "approve"` (openai/codex#17843; versions before it ignore the
 *   key, as the server table's deserializer does not deny unknown fields).
 * - Gemini CLI: `{ "mcpServers": { "troupe": { "httpUrl": …, "trust": true } } }` in the system
 *   defaults file, named by `GEMINI_CLI_SYSTEM_DEFAULTS_PATH` (google-gemini/gemini-cli
 *   packages/cli/src/config/settings.ts, `getSystemDefaultsPath`). Settings layer as system
 *   defaults < user < workspace < system settings, and `mcpServers` is shallow-merged, so the
 *   user's servers stay and an administrator's system settings (`mcp.allowed`, auth) still rule;
 *   the system defaults that were in effect are copied into the file, so they stay too.
 *   `httpUrl` is Streamable HTTP in every version (`url` alone meant SSE before `type` existed).
 *   Headless, the policy engine denies any tool no rule allows; `trust: true` is the rule that
 *   allows the server's tools (packages/core/src/policy/config.ts).
 *
 * `scratchDir` is a directory of the attempt's own for such files; `env` is the environment the
 * CLI will start with (it may move Gemini's settings files).
 */
export async function cliMcpConfig(kind: CliKind, url: string, scratchDir: string, env: Readonly<Record<string, string | undefined>>): Promise<CliMcpConfig> {
  switch (kind) {
    case 'claude-code': {
      const file = join(scratchDir, 'claude-mcp.json')
      return {
        args: ['--mcp-config', file, '--allowedTools', RUN_TOOL_NAMES.map((name) => `mcp__${MCP_SERVER_NAME}__${name}`).join(',')],
        env: {},
        files: { [file]: JSON.stringify({ mcpServers: { [MCP_SERVER_NAME]: { type: 'http', url } } }) },
      }
    }
    case 'codex': {
      const key = `mcp_servers.${MCP_SERVER_NAME}`
      // JSON string syntax is TOML basic-string syntax for a URL (no control characters).
      return { args: ['-c', `${key}.url=${JSON.stringify(url)}`, '-c', `${key}.default_tools_approval_mode="approve"`], env: {}, files: {} }
    }
    case 'gemini': {
      const file = join(scratchDir, 'gemini-system-defaults.json')
      const defaults = await readGeminiSettings(geminiSystemDefaultsPath(env))
      const servers = typeof defaults.mcpServers === 'object' && defaults.mcpServers !== null ? defaults.mcpServers : {}
      const settings = { ...defaults, mcpServers: { ...servers, [MCP_SERVER_NAME]: { httpUrl: url, trust: true } } }
      return { args: [], env: { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: file }, files: { [file]: JSON.stringify(settings, null, 2) } }
    }
  }
}

/** Where Gemini CLI reads its system defaults (settings.ts `getSystemSettingsPath` / `getSystemDefaultsPath`). */
function geminiSystemDefaultsPath(env: Readonly<Record<string, string | undefined>>): string {
  if (env.GEMINI_CLI_SYSTEM_DEFAULTS_PATH) return env.GEMINI_CLI_SYSTEM_DEFAULTS_PATH
  const os = platform()
  const settings =
    env.GEMINI_CLI_SYSTEM_SETTINGS_PATH ||
    (os === 'darwin' ? '/Library/Application Support/GeminiCli/settings.json' : os === 'win32' ? 'C:\\ProgramData\\gemini-cli\\settings.json' : '/etc/gemini-cli/settings.json')
  return join(dirname(settings), 'system-defaults.json')
}

/** A Gemini settings file as an object (`{}` when absent); like the CLI, comments are allowed and invalid JSON is an error. */
async function readGeminiSettings(file: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw error
  }
  let value: unknown
  try {
    value = JSON.parse(stripJsonComments(text))
  } catch (error) {
    throw new Error(`Gemini CLI system defaults ${file} are not valid JSON: ${(error as Error).message}`, { cause: error })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`Gemini CLI system defaults ${file} are not a JSON object`)
  return value as Record<string, unknown>
}

/** JSON text without `//` and `/* … *\/` comments (outside strings), as Gemini CLI accepts in settings. */
function stripJsonComments(text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!
    if (char === '"') {
      const start = i
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
      out += text.slice(start, i + 1)
    } else if (char === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++
      out += '\n'
    } else if (char === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2)
      i = end === -1 ? text.length : end + 1
    } else out += char
  }
  return out
}
