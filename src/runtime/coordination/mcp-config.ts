import type { CliKind } from '../plan/agent-spec.ts'

/** How to hand a CLI agent the run's MCP server: extra arguments, variables and files. */
export interface CliMcpConfig {
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  /** Files to write before the CLI starts (and remove after), by absolute path. */
  readonly files: Readonly<Record<string, string>>
}

/** The name of the run's MCP server in every CLI's configuration. */
const MCP_SERVER_NAME = 'troupe'

/** File name, in the attempt's scratch dir, of the Gemini CLI settings troupe writes. */
const GEMINI_SETTINGS_FILE = 'gemini-settings.json'

/**
 * The `troupe` MCP server in each CLI's own configuration format. Each CLI runs headless, where
 * nobody can approve a tool call, so the server is also marked trusted in the CLI's own terms
 * (the URL is the attempt's own and dies with it):
 *
 * - Claude Code: `--mcp-config '{"mcpServers":{"troupe":{"type":"http","url":…}}}'` (a JSON
 *   string is accepted in place of a file).
 * - Codex: `-c mcp_servers.troupe.url="…"` — `-c key=value` sets a dotted key of config.toml and
 *   parses the value as TOML (codex-rs/common/src/config_override.rs); a server with `url` is a
 *   Streamable HTTP server (codex-rs/config/src/mcp_types.rs, `RawMcpServerConfig`), with no
 *   feature flag since openai/codex#4689. `codex exec` declines every call to a tool without
 *   `readOnlyHint` ("user cancelled MCP tool call", openai/codex#16043) unless the server says
 *   `default_tools_approval_mode = "approve"` (openai/codex#17843).
 * - Gemini CLI: a settings file `{ "mcpServers": { "troupe": { "httpUrl": …, "trust": true } } }`
 *   named by `GEMINI_CLI_SYSTEM_SETTINGS_PATH` (packages/cli/src/config/settings.ts,
 *   `getSystemSettingsPath`; system settings override user and workspace ones, and `mcpServers`
 *   is shallow-merged, so the user's own servers stay). `httpUrl` is Streamable HTTP in every
 *   version (`url` alone meant SSE before `type` existed). Headless, the policy engine denies
 *   any tool no rule allows; `trust: true` is the rule that allows the server's tools
 *   (packages/core/src/policy/config.ts).
 *
 * `scratchDir` is a directory of the attempt's own for such files.
 */
export function cliMcpConfig(kind: CliKind, url: string, scratchDir: string): CliMcpConfig {
  switch (kind) {
    case 'claude-code':
      return { args: ['--mcp-config', JSON.stringify({ mcpServers: { [MCP_SERVER_NAME]: { type: 'http', url } } })], env: {}, files: {} }
    case 'codex': {
      const key = `mcp_servers.${MCP_SERVER_NAME}`
      // JSON string syntax is TOML basic-string syntax for a URL (no control characters).
      return { args: ['-c', `${key}.url=${JSON.stringify(url)}`, '-c', `${key}.default_tools_approval_mode="approve"`], env: {}, files: {} }
    }
    case 'gemini': {
      const file = `${scratchDir}/${GEMINI_SETTINGS_FILE}`
      const settings = { mcpServers: { [MCP_SERVER_NAME]: { httpUrl: url, trust: true } } }
      return { args: [], env: { GEMINI_CLI_SYSTEM_SETTINGS_PATH: file }, files: { [file]: JSON.stringify(settings) } }
    }
  }
}
