import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml'
import type { CliKind } from '../plan/agent-spec.ts'
import { RUN_TOOL_NAMES } from './tool-arguments.ts'

/** How to hand a CLI agent the run's MCP server: extra arguments, variables and files. */
export interface CliMcpConfig {
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  /** Files to write (mode 0600, their directories 0700) before the CLI starts, by absolute path. */
  readonly files: Readonly<Record<string, string>>
  /** Symbolic links to make, link path → target: the user's own CLI home, seen from the attempt's. */
  readonly links: Readonly<Record<string, string>>
}

/** The name of the run's MCP server in every CLI's configuration. */
const MCP_SERVER_NAME = 'troupe'

/**
 * The `troupe` MCP server in each CLI's own configuration format. Each CLI runs headless, where
 * nobody can approve a tool call, so the server is also marked trusted in the CLI's own terms.
 * The URL is the attempt's own and dies with it, but while it lives it is a credential: it is
 * never an argument (argv is world-readable in `ps`), only in a 0600 file in `scratchDir`, the
 * attempt's own 0700 directory (for Codex and Gemini made the CLI's home for the attempt):
 *
 * - Claude Code: `--mcp-config <file>`, the file (0600, in the attempt's own 0700 directory)
 *   holding `{"mcpServers":{"troupe":{"type":"http","url":…}}}`: the URL is the attempt's
 *   credential, so it is never in argv (`/proc/<pid>/cmdline` is readable by every local user);
 *   and `--allowedTools mcp__troupe__claim_files,…`:
 *   in `-p` mode a tool call no permission rule allows is denied ("Claude requested permissions
 *   to use …"). Each tool is named, as the server-wide `mcp__troupe` rule did not cover its
 *   tools in some versions (anthropics/claude-code#13815).
 * - Codex: `CODEX_HOME` = `scratchDir`, whose `config.toml` is the user's own (`$CODEX_HOME` or
 *   ~/.codex) with `[mcp_servers.troupe]` set: `url` (a Streamable HTTP server,
 *   codex-rs/config/src/mcp_types.rs `RawMcpServerConfig`) and `default_tools_approval_mode =
 *   "approve"`, as `codex exec` declines every call to a tool without `readOnlyHint` ("user
 *   cancelled MCP tool call", openai/codex#16043; 0.171: "MCP tool call requires approval, but
 *   approval policy is never") unless the server says so (openai/codex#17843).
 *   Every other entry of the user's Codex home (auth.json, sessions, AGENTS.md, rules, profiles)
 *   is linked in, so their login, provider settings and history stay theirs.
 * - Gemini CLI: `GEMINI_CLI_HOME` = `scratchDir` (Gemini's stand-in for the home directory), whose
 *   `.gemini/settings.json` is the user's own (`$GEMINI_CLI_HOME` or ~, comments allowed) with
 *   `mcpServers.troupe = { httpUrl, trust: true }`; the other entries of the user's `.gemini`
 *   (OAuth credentials, GEMINI.md, extensions) are linked in. Workspace and system settings
 *   still layer on top as usual. A system-defaults file would not do: Gemini reads one only if
 *   it and every parent directory are root-owned and not group- or other-writable, which no
 *   temp dir is. `httpUrl` is Streamable HTTP in every version; headless, the policy engine
 *   denies any tool no rule allows, and `trust: true` is the rule that allows the server's tools.
 *
 * `env` is the environment the CLI will start with (it names the user's CLI homes).
 */
export async function cliMcpConfig(kind: CliKind, url: string, scratchDir: string, env: Readonly<Record<string, string | undefined>>): Promise<CliMcpConfig> {
  switch (kind) {
    case 'claude-code': {
      const file = join(scratchDir, 'claude-mcp.json')
      return {
        args: ['--mcp-config', file, '--allowedTools', RUN_TOOL_NAMES.map((name) => `mcp__${MCP_SERVER_NAME}__${name}`).join(',')],
        env: {},
        files: { [file]: JSON.stringify({ mcpServers: { [MCP_SERVER_NAME]: { type: 'http', url } } }) },
        links: {},
      }
    }
    case 'codex': {
      const userHome = env.CODEX_HOME || join(env.HOME || homedir(), '.codex')
      const config = await readCodexConfig(join(userHome, 'config.toml'))
      const servers = isObject(config.mcp_servers) ? config.mcp_servers : {}
      config.mcp_servers = { ...servers, [MCP_SERVER_NAME]: { url, default_tools_approval_mode: 'approve' } }
      const file = join(scratchDir, 'config.toml')
      // Sessions must outlive the attempt's home: a repair resumes them (`codex exec resume <id>`).
      await mkdir(join(userHome, 'sessions'), { recursive: true, mode: 0o700 })
      const links = await linksTo(userHome, scratchDir, 'config.toml')
      return { args: [], env: { CODEX_HOME: scratchDir }, files: { [file]: stringifyToml(config) }, links }
    }
    case 'gemini': {
      const userDir = join(env.GEMINI_CLI_HOME || env.HOME || homedir(), '.gemini')
      const settings = await readGeminiSettings(join(userDir, 'settings.json'))
      const servers = isObject(settings.mcpServers) ? settings.mcpServers : {}
      settings.mcpServers = { ...servers, [MCP_SERVER_NAME]: { httpUrl: url, trust: true } }
      const dir = join(scratchDir, '.gemini')
      // Chats (`tmp/<project>/chats`) must outlive the attempt's home: a repair resumes them (`--resume <id>`).
      await mkdir(join(userDir, 'tmp'), { recursive: true, mode: 0o700 })
      const links = await linksTo(userDir, dir, 'settings.json')
      const files = { [join(dir, 'settings.json')]: JSON.stringify(settings, null, 2) }
      return { args: [], env: { GEMINI_CLI_HOME: scratchDir }, files, links }
    }
  }
}

/** Writes a configuration's files (0600, directories 0700) and links. */
export async function writeCliMcpConfig(config: CliMcpConfig): Promise<void> {
  for (const [file, text] of Object.entries(config.files)) {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await writeFile(file, text, { mode: 0o600 })
  }
  for (const [link, target] of Object.entries(config.links)) {
    await mkdir(dirname(link), { recursive: true, mode: 0o700 })
    await symlink(target, link)
  }
}

/** Links from `into` to every entry of the directory `from` but `except` (none when `from` does not exist). */
async function linksTo(from: string, into: string, except: string): Promise<Record<string, string>> {
  let names: string[]
  try {
    names = await readdir(from)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return {}
    throw error
  }
  return Object.fromEntries(names.filter((name) => name !== except).map((name) => [join(into, name), join(from, name)]))
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** The user's Codex config.toml as an object (`{}` when absent); invalid TOML is an error naming the file. */
async function readCodexConfig(file: string): Promise<Record<string, unknown>> {
  const text = await readIfExists(file)
  if (text === undefined) return {}
  try {
    return parseToml(text) as Record<string, unknown>
  } catch (error) {
    throw new Error(`Codex config ${file} is not valid TOML: ${(error as Error).message}`, { cause: error })
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** A Gemini settings file as an object (`{}` when absent); like the CLI, comments are allowed and invalid JSON is an error. */
async function readGeminiSettings(file: string): Promise<Record<string, unknown>> {
  const text = await readIfExists(file)
  if (text === undefined) return {}
  let value: unknown
  try {
    value = JSON.parse(stripJsonComments(text))
  } catch (error) {
    throw new Error(`Gemini CLI settings ${file} are not valid JSON: ${(error as Error).message}`, { cause: error })
  }
  if (!isObject(value)) throw new Error(`Gemini CLI settings ${file} are not a JSON object`)
  return value
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
