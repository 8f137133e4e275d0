import * as Schema from 'effect/Schema'
import * as SchemaRepresentation from 'effect/SchemaRepresentation'
import { ConfigSchema } from '../runtime/core/config.ts'
import { AGENT_ENTRY_SCHEMAS } from '../runtime/plan/agent-schema.ts'
import { PlanSchema, StageSchema, TaskSchema } from '../runtime/plan/plan-schema.ts'
import type { SchemaName } from './choices.ts'


type Json = { [key: string]: unknown }

const Command = Schema.Union([Schema.String, Schema.Array(Schema.String)]).annotate({
  description: 'an argv array such as [npm, test] (no shell), or one command string run by /bin/sh',
})

const ModulePath = Schema.String.annotate({ description: 'an ES module path, relative to the plan file' })
const IntegrationBranch = Schema.String.annotate({
  description: 'completed worktree tasks merge here; default troupe/{{run.id}}/integration',
})

/**
 * The plan as an editor sees it: the decoder's schemas, with the parts `linkPlan` decodes one
 * by one (agents, tasks, workspace keys) filled in from their own schemas, so an editor
 * completes and checks every field. The decoder stays the authority (links, templates,
 * executables are checked when a plan is loaded).
 */
const EditorPlanSchema = Schema.Struct({
  ...PlanSchema.fields,
  agents: Schema.optional(
    Schema.Record(
      Schema.String,
      Schema.Union([ModulePath, ...Object.values(AGENT_ENTRY_SCHEMAS)]),
    ),
  ),
  stages: Schema.optional(Schema.Record(Schema.String, StageSchema)),
  integration: Schema.optional(
    Schema.Struct({
      branch: Schema.optional(IntegrationBranch),
      verify: Schema.optional(Command),
    }),
  ),
  setup: Schema.optional(Command),
  copy: Schema.optional(Schema.Array(Schema.String)),
  tasks: Schema.Array(TaskSchema),
}).annotate({ title: 'troupe plan' })

/** The JSON Schema (draft 2020-12) of a plan file or of `troupe.config.json`, generated from the effect Schemas. */
export function jsonSchema(name: SchemaName): Json {
  const schema = name === 'plan' ? EditorPlanSchema : ConfigSchema.annotate({ title: 'troupe config' })
  // Everything inline: the schemas' identifiers are phrases for error messages ("a non-empty string"), not names.
  const representation = Schema.toRepresentation(schema, { referencePolicy: () => undefined })
  const document = SchemaRepresentation.toJsonSchemaDocument(representation, { onExcessProperty: 'error', generateDescriptions: true })
  const root = name === 'plan' ? (withoutJsonCodecBranches(document.schema) as Json) : (document.schema as Json)
  if (name === 'plan') (root.properties as Json).tasks = { ...(root.properties as Json).tasks as Json, minItems: 1 }
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...root }
}

const NON_FINITE = JSON.stringify({ type: 'string', enum: ['NaN', 'Infinity', '-Infinity'] })
const NULL = JSON.stringify({ type: 'null' })

/**
 * Drops the branches effect adds for its JSON codec: a plan's optional keys are
 * `Schema.optional` (an `undefined` value counts as absent), which the codec writes as
 * `null`, and numbers, which it may write as "NaN" or "Infinity". A plan file holds neither:
 * the decoder refuses both. (The config's optional keys are `optionalKey`; its `null`s are real.)
 */
function withoutJsonCodecBranches(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutJsonCodecBranches)
  if (typeof node !== 'object' || node === null) return node
  const out: Json = {}
  for (const [key, value] of Object.entries(node)) out[key] = withoutJsonCodecBranches(value)
  if (Array.isArray(out.anyOf)) {
    const kept = (out.anyOf as unknown[]).filter((branch) => ![NON_FINITE, NULL].includes(JSON.stringify(branch)))
    if (kept.length !== 1) out.anyOf = kept
    else {
      delete out.anyOf
      return { ...(kept[0] as Json), ...out }
    }
  }
  return out
}
