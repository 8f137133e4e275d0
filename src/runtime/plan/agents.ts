import { TroupeError, describeValue } from '../core/errors.ts'
import { formatKeyPath, valueOrThrow } from '../core/schema-errors.ts'
import { decodeAgentEntry } from './agent-schema.ts'
import {
  AGENT_KINDS,
  CLI_KINDS,
  COMMAND_OUTPUTS,
  LLM_KINDS,
  type AgentKind,
  type AgentSpec,
  type CliKind,
  type CommandOutput,
  type LlmKind,
} from './agent-spec.ts'
import { parseTemplate } from './templates.ts'

/** What compiling an agent may ask of the machine. Injected, so linking does no I/O. */
export interface AgentEnvironment {
  /** `file:` URL of a module agent's file, or throws ERR_PLAN_UNKNOWN_AGENT. */
  resolveModule(path: string, baseDir: string, name: string): string
  /** Absolute path of an executable (a bare name on PATH, or a path relative to `baseDir`), or undefined. */
  which(command: string, baseDir: string): string | undefined
  /** Whether an environment variable is set (never its value). */
  hasEnv(name: string): boolean
}

const DEFAULT_BINS: Readonly<Record<CliKind, string>> = { 'claude-code': 'claude', codex: 'codex', gemini: 'gemini' }

/** Compiles one entry of the plan's `agents` map (string = module path; object = a kind). */
export function compileAgent(name: string, raw: unknown, baseDir: string, env: AgentEnvironment): AgentSpec {
  const field = `agents.${name}`
  if (typeof raw === 'string') {
    if (raw.length === 0) throw invalid(field, raw, 'a module path or an object with a `kind`')
    return { kind: 'module', name, moduleUrl: env.resolveModule(raw, baseDir, name) }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(field, raw, 'a module path (string) or an object with a `kind`')
  const entry = raw as Record<string, unknown>
  const kind = entry.kind
  if (!AGENT_KINDS.includes(kind as never)) throw invalid(`${field}.kind`, kind, `one of ${AGENT_KINDS.map((k) => `"${k}"`).join(', ')}`)
  // The shape (keys, types, bounds) from the kind's schema; below, what needs the machine or the templates.
  valueOrThrow(decodeAgentEntry(kind as AgentKind, raw), raw, 'ERR_PLAN_INVALID', 'Invalid plan', { formatPath: (path) => formatKeyPath(['agents', name, ...path]) })
  if (kind === 'module') {
    const path = entry.path
    if (typeof path !== 'string' || path.length === 0) throw invalid(`${field}.path`, path, 'a module path')
    return { kind: 'module', name, moduleUrl: env.resolveModule(path, baseDir, name) }
  }
  if (kind === 'command') return compileCommand(name, entry, baseDir, env)
  if (CLI_KINDS.includes(kind as CliKind)) return compileCli(name, kind as CliKind, entry, baseDir, env)
  return compileLlm(name, kind as LlmKind, entry, env)
}

function compileCommand(name: string, entry: Record<string, unknown>, baseDir: string, env: AgentEnvironment): AgentSpec {
  const field = `agents.${name}`
  const run = entry.run
  let executable: string
  if (typeof run === 'string') {
    if (run.trim().length === 0) throw invalid(`${field}.run`, run, 'a non-empty command')
    parseTemplate(run, `${field}.run`)
    executable = '/bin/sh'
  } else if (Array.isArray(run) && run.length > 0 && run.every((arg) => typeof arg === 'string')) {
    run.forEach((arg, i) => parseTemplate(arg as string, `${field}.run[${i}]`))
    const program = run[0] as string
    if (program.includes('{{')) throw invalid(`${field}.run[0]`, program, 'a fixed program name (templates are allowed in the arguments)')
    const found = env.which(program, baseDir)
    if (found === undefined) {
      throw new TroupeError('ERR_AGENT_UNAVAILABLE', `Agent "${name}" (kind command) runs ${JSON.stringify(program)}, which is not found ${program.includes('/') ? `relative to ${baseDir}` : 'on PATH'}; install it or fix \`${field}.run[0]\``)
    }
    executable = found
  } else {
    throw invalid(`${field}.run`, run, 'an argv array of strings (no shell) or one command string (run by /bin/sh)')
  }
  const output = entry.output ?? 'text'
  if (!COMMAND_OUTPUTS.includes(output as CommandOutput)) throw invalid(`${field}.output`, output, `one of ${COMMAND_OUTPUTS.map((o) => `"${o}"`).join(', ')}`)
  return { kind: 'command', name, run: run as string | string[], cwd: optionalTemplate(entry.cwd, `${field}.cwd`), env: templateRecord(entry.env, `${field}.env`), output: output as CommandOutput, executable }
}

function compileCli(name: string, kind: CliKind, entry: Record<string, unknown>, baseDir: string, env: AgentEnvironment): AgentSpec {
  const field = `agents.${name}`
  const bin = optionalString(entry.bin, `${field}.bin`)
  const program = bin ?? DEFAULT_BINS[kind]
  const executable = env.which(program, baseDir)
  if (executable === undefined) {
    throw new TroupeError(
      'ERR_AGENT_UNAVAILABLE',
      `Agent "${name}" (kind ${kind}) needs the ${JSON.stringify(program)} executable, which is not found ${program.includes('/') ? `relative to ${baseDir}` : 'on PATH'}; install it, or set \`${field}.bin\` to its path`,
    )
  }
  const args = entry.args ?? []
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw invalid(`${field}.args`, args, 'an array of strings')
  args.forEach((arg, i) => parseTemplate(arg as string, `${field}.args[${i}]`))
  return {
    kind,
    name,
    model: optionalString(entry.model, `${field}.model`),
    args: args as string[],
    bin,
    cwd: optionalTemplate(entry.cwd, `${field}.cwd`),
    env: templateRecord(entry.env, `${field}.env`),
    executable,
  }
}

function compileLlm(name: string, kind: LlmKind, entry: Record<string, unknown>, env: AgentEnvironment): AgentSpec {
  const field = `agents.${name}`
  const model = entry.model
  if (typeof model !== 'string' || model.length === 0) throw invalid(`${field}.model`, model, 'a model name')
  const apiKeyEnv = optionalString(entry.apiKeyEnv, `${field}.apiKeyEnv`) ?? (kind === 'openai' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY')
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv)) throw invalid(`${field}.apiKeyEnv`, apiKeyEnv, 'the name of an environment variable')
  if (!env.hasEnv(apiKeyEnv)) {
    throw new TroupeError('ERR_AGENT_UNAVAILABLE', `Agent "${name}" (kind ${kind}) reads its API key from the environment variable ${apiKeyEnv}, which is not set; export it before running`)
  }
  const baseUrl = optionalString(entry.baseUrl, `${field}.baseUrl`)
  if (baseUrl !== undefined && !/^https?:\/\//.test(baseUrl)) throw invalid(`${field}.baseUrl`, baseUrl, 'an http:// or https:// URL')
  const output = entry.output ?? 'text'
  if (output !== 'text' && output !== 'json') throw invalid(`${field}.output`, output, '"text" or "json"')
  const maxTokens = entry.maxTokens
  if (maxTokens !== undefined && (typeof maxTokens !== 'number' || !Number.isSafeInteger(maxTokens) || maxTokens < 1)) throw invalid(`${field}.maxTokens`, maxTokens, 'an integer >= 1')
  const temperature = entry.temperature
  if (temperature !== undefined && (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2))) throw invalid(`${field}.temperature`, temperature, 'a number from 0 to 2')
  return {
    kind,
    name,
    model,
    baseUrl,
    apiKeyEnv,
    system: optionalString(entry.system, `${field}.system`),
    output,
    maxTokens: maxTokens as number | undefined,
    temperature: temperature as number | undefined,
  }
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, value, 'a non-empty string')
  return value
}

function optionalTemplate(value: unknown, field: string): string | undefined {
  const text = optionalString(value, field)
  if (text !== undefined) parseTemplate(text, field)
  return text
}

function templateRecord(value: unknown, field: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  if (value === undefined) return out
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, value, 'an object of strings')
  for (const [key, text] of Object.entries(value)) {
    if (typeof text !== 'string') throw invalid(`${field}.${key}`, text, 'a string')
    parseTemplate(text, `${field}.${key}`)
    out[key] = text
  }
  return out
}

function invalid(field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Invalid plan: \`${field}\` is ${describeValue(value)}: expected ${allowed}`)
}
