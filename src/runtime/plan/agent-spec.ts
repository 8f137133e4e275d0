/**
 * The agent kinds of a plan's `agents` map (docs/agents.md), as compiled: validated,
 * module paths resolved, strings kept as templates to render per attempt. Pure types: the
 * plan produces them, executors consume them.
 */

export const AGENT_KINDS = ['module', 'command', 'claude-code', 'codex', 'gemini', 'openai', 'anthropic'] as const
export type AgentKind = (typeof AGENT_KINDS)[number]

/** The kinds that run a coding-agent CLI as one OS process per attempt. */
export const CLI_KINDS = ['claude-code', 'codex', 'gemini'] as const
export type CliKind = (typeof CLI_KINDS)[number]

/**
 * What a CLI agent may do without anyone approving it (headless, nobody can): `read-only`
 * reads and searches; `edit` also edits files in its working directory; `full` also runs any
 * command. Each CLI maps it to its own flags (`CliParser.permissionArgs`).
 */
export const CLI_PERMISSIONS = ['read-only', 'edit', 'full'] as const
export type CliPermission = (typeof CLI_PERMISSIONS)[number]

/** The kinds that call an LLM API over HTTP through the provider's official SDK. */
export const LLM_KINDS = ['openai', 'anthropic'] as const
export type LlmKind = (typeof LLM_KINDS)[number]

/** How a `command` agent's stdout becomes its output's `json`. */
export const COMMAND_OUTPUTS = ['text', 'json', 'jsonl'] as const
export type CommandOutput = (typeof COMMAND_OUTPUTS)[number]

/** A template string: `{{input.KEY}}`, `{{deps.ID.output.PATH}}`, `{{task.id}}`, `{{run.id}}`, `{{attempt}}`, `{{workspace}}`. */
export type Template = string

interface AgentBase {
  /** The key of the plan's `agents` map (or the module path given inline). */
  readonly name: string
}

/** An ES module whose default export is `async (input, ctx) => output`, run in a worker thread. */
export interface ModuleAgentSpec extends AgentBase {
  readonly kind: 'module'
  /** `file:` URL of the module. */
  readonly moduleUrl: string
}

/** One OS process per attempt, in its own process group. */
export interface CommandAgentSpec extends AgentBase {
  readonly kind: 'command'
  /** argv without a shell, or one string run by `/bin/sh -c`. */
  readonly run: Template | readonly Template[]
  /** @default the task's workspace, else the plan's directory */
  readonly cwd: Template | undefined
  readonly env: Readonly<Record<string, Template>>
  /** @default 'text' */
  readonly output: CommandOutput
  /** Absolute path of the executable (argv form, found at validation), or `/bin/sh` for the string form. */
  readonly executable: string
}

/** A coding-agent CLI in headless mode; the prompt is the task's templated `input.prompt`. */
export interface CliAgentSpec extends AgentBase {
  readonly kind: CliKind
  /** From the agent entry, else `config.models[name]`. */
  readonly model: string | undefined
  readonly args: readonly Template[]
  /** Overrides the executable (`claude`, `codex`, `gemini`). */
  readonly bin: string | undefined
  /** @default `edit` when the task has a worktree, else `read-only` (decided per attempt) */
  readonly permissions: CliPermission | undefined
  readonly cwd: Template | undefined
  readonly env: Readonly<Record<string, Template>>
  /** Absolute path of the executable, found at validation. */
  readonly executable: string
}

/** A chat call to an LLM API; the prompt is the task's templated `input.prompt`. */
export interface LlmAgentSpec extends AgentBase {
  readonly kind: LlmKind
  readonly model: string
  /** OpenAI-compatible endpoint or Anthropic base URL. @default the provider's */
  readonly baseUrl: string | undefined
  /** Name of the environment variable holding the API key. Never the key itself. */
  readonly apiKeyEnv: string
  readonly system: string | undefined
  /** `json`: ask for a JSON object and parse it into the output's `json`. @default 'text' */
  readonly output: 'text' | 'json'
  readonly maxTokens: number | undefined
  readonly temperature: number | undefined
}

export type AgentSpec = ModuleAgentSpec | CommandAgentSpec | CliAgentSpec | LlmAgentSpec

/** Whether an agent of this kind is a coding-agent CLI. */
export function isCliKind(kind: AgentKind): kind is CliKind {
  return (CLI_KINDS as readonly AgentKind[]).includes(kind)
}

/** Whether an agent of this kind calls an LLM API. */
export function isLlmKind(kind: AgentKind): kind is LlmKind {
  return (LLM_KINDS as readonly AgentKind[]).includes(kind)
}

/** Whether an agent runs as an OS process (and so gets process-group cleanup and a log file). */
export function isProcessAgent(agent: AgentSpec): agent is CommandAgentSpec | CliAgentSpec {
  return agent.kind === 'command' || isCliKind(agent.kind)
}
