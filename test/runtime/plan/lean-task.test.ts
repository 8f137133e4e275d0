import fc from 'fast-check'
import * as Schema from 'effect/Schema'
import { describe, expect, it } from 'vitest'
import { leanTask } from '../../../src/runtime/plan/lean-task.ts'
import { TaskSchema } from '../../../src/runtime/plan/plan-schema.ts'

const accepts = Schema.is(TaskSchema)
const decodes = (raw: unknown) => Schema.decodeUnknownExit(TaskSchema, { onExcessProperty: 'error' })(raw)._tag === 'Success'

/** Values near the edges of every task field: right and wrong types, bounds, extra keys. */
const field = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(0, 1, -1, 1.5, 2_147_483_647, 2_147_483_648, Number.NaN, Infinity, Number.MAX_SAFE_INTEGER + 1),
  fc.string({ maxLength: 3 }),
  fc.constantFrom('', ' ', 'high', 'urgent', 'input.x == 1'),
  fc.array(fc.oneof(fc.string({ maxLength: 2 }), fc.integer()), { maxLength: 3 }),
  fc.record({ cpu: fc.oneof(fc.integer({ min: -2, max: 2 }), fc.string()), memoryMb: fc.integer({ min: -2, max: 2 }) }, { requiredKeys: [] }),
)
const task = fc.record(
  {
    id: field,
    agent: field,
    input: fc.anything({ maxDepth: 3 }),
    dependsOn: field,
    priority: field,
    timeoutMs: field,
    retries: field,
    estimateMs: field,
    claims: field,
    uses: field,
    stage: field,
    description: field,
    tags: field,
    resources: field,
    when: field,
    extra: field,
  },
  { requiredKeys: [] },
)

/** A well-formed task with one field replaced by an edge value: most are near misses. */
const base = { id: 't1', agent: 'work', dependsOn: ['t0'], priority: 'high', timeoutMs: 1000, retries: 1, estimateMs: 5, when: 'input.x == 1' }
const nearMiss = fc
  .tuple(fc.constantFrom('id', 'agent', 'input', 'dependsOn', 'priority', 'timeoutMs', 'retries', 'estimateMs', 'claims', 'uses', 'stage', 'description', 'tags', 'resources', 'when', 'extra'), field)
  .map(([key, value]) => ({ ...base, [key]: value }))

describe('leanTask', () => {
  it('never accepts a task that TaskSchema rejects', () => {
    let lean = 0
    fc.assert(
      fc.property(fc.oneof(task, nearMiss), (raw) => {
        if (leanTask(raw) === undefined) return
        lean++
        expect(decodes(raw)).toBe(true)
      }),
      { numRuns: 5000 },
    )
    expect(lean).toBeGreaterThan(100)
  })

  it('accepts the common well-formed task, so large plans take the lean path', () => {
    const raw = { id: 't1', agent: 'work', dependsOn: ['t0'], priority: 'high', timeoutMs: 1000, retries: 1, estimateMs: 5, claims: ['src/**'], uses: ['llm'], input: { a: [1, { b: 2 }] } }
    expect([leanTask(raw), accepts(raw)]).toEqual([raw, true])
  })

  it('hands a key named like an Object.prototype member (constructor) to the schema, which refuses it', () => {
    const raw = JSON.parse('{"id":"t1","agent":"work","constructor":1,"__proto__":2}') as unknown
    expect([leanTask(raw), decodes(raw)]).toEqual([undefined, false])
  })

  it('has a check for every field of TaskSchema: a well-formed value of each takes the lean path', () => {
    const wellFormed: Record<string, unknown> = {
      input: 1, dependsOn: [], priority: 'low', timeoutMs: 1, retries: 0, estimateMs: 0, claims: [], uses: [], stage: 's',
      description: '', tags: [], when: 'true', workspace: 'none', inputs: ['src/*.ts'], cache: true,
    }
    // Fields with nested rules the schema decodes on its own (the lean path hands them over).
    const schemaOnly = new Set(['id', 'agent', 'resources', 'approve', 'repair', 'check'])
    const fields = Object.keys(TaskSchema.fields).filter((key) => !schemaOnly.has(key))
    // Every other field has a value here: a field added to the schema without one fails this test.
    expect(fields.filter((key) => !(key in wellFormed))).toEqual([])
    expect(fields.filter((key) => leanTask({ id: 't', agent: 'a', [key]: wellFormed[key] }) === undefined)).toEqual([])
  })
})
