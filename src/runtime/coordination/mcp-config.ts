import type { CliKind } from '../plan/agent-spec.ts'

/** How to hand a CLI agent the run's MCP server: extra arguments, variables and files. */
export interface CliMcpConfig {
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  /** Files to write before the CLI starts (and remove after), by absolute path. */
  readonly files: Readonly<Record<string, string>>
}

/**
 * The `troupe` MCP server in each CLI's own configuration format:
 * - Claude Code: `--mcp-config '{"mcpServers":{"troupe":{"type":"http","url":…}}}'` (a JSON string is accepted in place of a file);
 * - Codex: `-c mcp_servers.troupe.url="…"` (a Streamable HTTP server in its TOML config, set from the command line);
 * - Gemini CLI: a settings file `{ "mcpServers": { "troupe": { "httpUrl": … } } }` named by `GEMINI_CLI_SYSTEM_SETTINGS_PATH`.
 * `scratchDir` is a directory of the attempt's own for such files.
 */
export function cliMcpConfig(kind: CliKind, url: string, scratchDir: string): CliMcpConfig {
  switch (kind) {
    case 'claude-code':
      return { args: ['--mcp-config', JSON.stringify({ mcpServers: { troupe: { type: 'http', url } } })], env: {}, files: {} }
    case 'codex':
      return { args: ['-c', `mcp_servers.troupe.url=${JSON.stringify(url)}`], env: {}, files: {} }
    case 'gemini': {
      const file = `${scratchDir}/gemini-settings.json`
      return { args: [], env: { GEMINI_CLI_SYSTEM_SETTINGS_PATH: file }, files: { [file]: JSON.stringify({ mcpServers: { troupe: { httpUrl: url } } }) } }
    }
  }
}
