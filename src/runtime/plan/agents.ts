import { didYouMean } from '../core/did-you-mean.ts'
import { TroupeError, describeValue } from '../core/errors.ts'
import { formatKeyPath, valueOrThrow } from '../core/schema-errors.ts'
import { decodeAgentEntry, type AgentEntry } from './agent-schema.ts'
import { AGENT_KINDS, type AgentKind, type AgentSpec, type CliKind, type LlmKind } from './agent-spec.ts'
import { parseShellTemplate } from './shell-template.ts'
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
  const kind = (raw as { kind?: unknown }).kind
  if (!AGENT_KINDS.includes(kind as never)) {
    // `claude` for `claude-code`: a kind's unambiguous prefix is as likely a slip as a typo.
    const prefixOf = typeof kind === 'string' && kind.length >= 3 ? AGENT_KINDS.filter((k) => k.startsWith(kind.toLowerCase())) : []
    const hint = typeof kind !== 'string' ? '' : prefixOf.length === 1 ? ` (did you mean "${prefixOf[0]}"?)` : didYouMean(kind, AGENT_KINDS)
    throw invalid(`${field}.kind`, kind, `one of ${AGENT_KINDS.map((k) => `"${k}"`).join(', ')}${hint}`)
  }
  // The shape (keys, types, bounds) comes from the kind's schema; below, only what needs the machine or the templates.
  const entry = valueOrThrow(decodeAgentEntry(kind as AgentKind, raw), raw, 'ERR_PLAN_INVALID', 'Invalid plan', { formatPath: (path) => formatKeyPath(['agents', name, ...path]) })
  switch (entry.kind) {
    case 'module':
      return { kind: 'module', name, moduleUrl: env.resolveModule(entry.path, baseDir, name) }
    case 'command':
      return compileCommand(name, entry, baseDir, env)
    case 'openai':
    case 'anthropic':
      return compileLlm(name, entry, env)
    default:
      return compileCli(name, entry, baseDir, env)
  }
}

function compileCommand(name: string, entry: Extract<AgentEntry, { kind: 'command' }>, baseDir: string, env: AgentEnvironment): AgentSpec {
  const field = `agents.${name}`
  const run = entry.run
  let executable = '/bin/sh'
  if (typeof run === 'string') parseShellTemplate(run, `${field}.run`)
  else {
    run.forEach((arg, i) => parseTemplate(arg, `${field}.run[${i}]`))
    const program = run[0]!
    if (program.includes('{{')) throw invalid(`${field}.run[0]`, program, 'a fixed program name (templates are allowed in the arguments)')
    executable = findExecutable(env, program, baseDir, () => `Agent "${name}" (kind command) runs ${JSON.stringify(program)}, which is not found ${where(program, baseDir)}; install it or fix \`${field}.run[0]\``)
  }
  return { kind: 'command', name, run, cwd: template(entry.cwd, `${field}.cwd`), env: templates(entry.env, `${field}.env`), output: entry.output ?? 'text', executable }
}

function compileCli(name: string, entry: Extract<AgentEntry, { kind: CliKind }>, baseDir: string, env: AgentEnvironment): AgentSpec {
  const field = `agents.${name}`
  const program = entry.bin ?? DEFAULT_BINS[entry.kind]
  const executable = findExecutable(env, program, baseDir, () => `Agent "${name}" (kind ${entry.kind}) needs the ${JSON.stringify(program)} executable, which is not found ${where(program, baseDir)}; install it, or set \`${field}.bin\` to its path`)
  const args = entry.args ?? []
  args.forEach((arg, i) => parseTemplate(arg, `${field}.args[${i}]`))
  const cwd = template(entry.cwd, `${field}.cwd`)
  const variables = templates(entry.env, `${field}.env`)
  const { kind, model, bin, permissions } = entry
  return { kind, name, model, args, bin, permissions, cwd, env: variables, executable }
}

function compileLlm(name: string, entry: Extract<AgentEntry, { kind: LlmKind }>, env: AgentEnvironment): AgentSpec {
  const apiKeyEnv = entry.apiKeyEnv ?? (entry.kind === 'openai' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY')
  if (!env.hasEnv(apiKeyEnv)) {
    throw new TroupeError('ERR_AGENT_UNAVAILABLE', `Agent "${name}" (kind ${entry.kind}) reads its API key from the environment variable ${apiKeyEnv}, which is not set; export it before running`)
  }
  return {
    kind: entry.kind,
    name,
    model: entry.model,
    baseUrl: entry.baseUrl,
    apiKeyEnv,
    system: entry.system,
    output: entry.output ?? 'text',
    maxTokens: entry.maxTokens,
    temperature: entry.temperature,
  }
}

function findExecutable(env: AgentEnvironment, program: string, baseDir: string, message: () => string): string {
  const found = env.which(program, baseDir)
  if (found === undefined) throw new TroupeError('ERR_AGENT_UNAVAILABLE', message())
  return found
}

function where(program: string, baseDir: string): string {
  return program.includes('/') ? `relative to ${baseDir}` : 'on PATH'
}

function template(text: string | undefined, field: string): string | undefined {
  if (text !== undefined) parseTemplate(text, field)
  return text
}

function templates(record: Readonly<Record<string, string>> | undefined, field: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  for (const [key, text] of Object.entries(record ?? {})) out[key] = template(text, `${field}.${key}`)!
  return out
}

function invalid(field: string, value: unknown, allowed: string): TroupeError {
  return new TroupeError('ERR_PLAN_INVALID', `Invalid plan: \`${field}\` is ${describeValue(value)}: expected ${allowed}`)
}
