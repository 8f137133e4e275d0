import type * as Exit from 'effect/Exit'
import * as Schema from 'effect/Schema'
import { CLI_PERMISSIONS, COMMAND_OUTPUTS, type AgentKind } from './agent-spec.ts'
import { RepairSchema } from './repair-spec.ts'

/**
 * The shape of each agent kind's entry in a plan's `agents` map (docs/agents.md):
 * keys, types and bounds. What needs the machine or the templates (executables on PATH,
 * API-key variables, `{{…}}` syntax) is checked by `compileAgent`.
 */

const opt = Schema.optional

function expecting<S extends Schema.Top>(schema: S, expected: string): S['Rebuild'] {
  return schema.annotate({ identifier: expected })
}

function where<S extends Schema.Top>(schema: S, predicate: (value: S['Type']) => boolean, expected: string): S['Rebuild'] {
  return expecting(schema.check(Schema.makeFilter(predicate, { expected })), expected)
}

const Text = where(Schema.String, (s: string) => s.length > 0, 'a non-empty string')
const Strings = expecting(Schema.Array(Schema.String), 'an array of strings')
const Env = expecting(Schema.Record(Schema.String, expecting(Schema.String, 'a string')), 'an object of strings')
const Description = opt(expecting(Schema.String, 'a string'))
const Model = opt(Text)

function entry<K extends AgentKind, F extends Schema.Struct.Fields>(kind: K, fields: F) {
  return Schema.Struct({ kind: Schema.Literal(kind), description: Description, ...fields, repair: opt(RepairSchema) }).annotate({
    title: `${kind} agent`,
  })
}

const Permissions = expecting(Schema.Literals(CLI_PERMISSIONS), CLI_PERMISSIONS.map((p) => `"${p}"`).join(', '))
const cli = <K extends 'claude-code' | 'codex' | 'gemini'>(kind: K) =>
  entry(kind, { model: Model, args: opt(Strings), bin: opt(Text), cwd: opt(Text), env: opt(Env), permissions: opt(Permissions) })
const llm = <K extends 'openai' | 'anthropic'>(kind: K) =>
  entry(kind, {
    model: Text.annotateKey({ messageMissingKey: 'a model name' }),
    baseUrl: opt(where(Schema.String, (s: string) => /^https?:\/\//.test(s), 'an http:// or https:// URL')),
    apiKeyEnv: opt(where(Schema.String, (s: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s), 'the name of an environment variable')),
    system: opt(Text),
    output: opt(expecting(Schema.Literals(['text', 'json']), '"text" or "json"')),
    maxTokens: opt(where(Schema.Number, (n: number) => Number.isSafeInteger(n) && n >= 1, 'an integer >= 1')),
    temperature: opt(where(Schema.Number, (n: number) => n >= 0 && n <= 2, 'a number from 0 to 2')),
  })

/** One schema per kind: an entry is decoded with the schema its `kind` names. */
export const AGENT_ENTRY_SCHEMAS = {
  module: entry('module', { path: Text.annotateKey({ messageMissingKey: 'a module path' }) }),
  command: entry('command', {
    run: expecting(
      Schema.Union([
        where(Schema.String, (s: string) => s.trim().length > 0, 'a non-empty command'),
        where(Schema.Array(Schema.String), (a: readonly string[]) => a.length > 0, 'a non-empty argv array'),
      ]),
      'an argv array of strings (no shell) or one command string (run by /bin/sh)',
    ).annotateKey({ messageMissingKey: 'an argv array of strings (no shell) or one command string (run by /bin/sh)' }),
    cwd: opt(Text),
    env: opt(Env),
    output: opt(expecting(Schema.Literals(COMMAND_OUTPUTS), COMMAND_OUTPUTS.map((o) => `"${o}"`).join(', '))),
  }),
  'claude-code': cli('claude-code'),
  codex: cli('codex'),
  gemini: cli('gemini'),
  openai: llm('openai'),
  anthropic: llm('anthropic'),
} as const

/** A decoded agent entry, typed by its kind. */
export type AgentEntry = { [K in AgentKind]: (typeof AGENT_ENTRY_SCHEMAS)[K]['Type'] }[AgentKind]

const DECODE_OPTIONS = { onExcessProperty: 'error', errors: 'all' } as const
const decoders: Record<AgentKind, (input: unknown) => Exit.Exit<unknown, unknown>> = {
  module: Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS.module, DECODE_OPTIONS),
  command: Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS.command, DECODE_OPTIONS),
  'claude-code': Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS['claude-code'], DECODE_OPTIONS),
  codex: Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS.codex, DECODE_OPTIONS),
  gemini: Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS.gemini, DECODE_OPTIONS),
  openai: Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS.openai, DECODE_OPTIONS),
  anthropic: Schema.decodeUnknownExit(AGENT_ENTRY_SCHEMAS.anthropic, DECODE_OPTIONS),
}

/** Decodes an agent entry with the schema of its `kind`. */
export function decodeAgentEntry(kind: AgentKind, entry: unknown): Exit.Exit<AgentEntry, unknown> {
  return decoders[kind](entry) as Exit.Exit<AgentEntry, unknown>
}
