import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { decode, encode, isPlain, MAX_DEPTH, parse, stringify } from '../../../src/runtime/journal/codec.ts'

const roundTrip = (value: unknown) => parse(stringify(value))

describe('codec', () => {
  it('leaves plain JSON values as they are', () => {
    const value = { a: [1, 'x', true, null], b: { c: 2.5 } }
    expect(stringify(value)).toBe(JSON.stringify(value))
  })

  it('round-trips BigInt, NaN, ±Infinity, -0 and undefined', () => {
    const value = { big: 10n, nan: Number.NaN, inf: Infinity, ninf: -Infinity, nz: -0, u: undefined }
    const back = roundTrip(value) as typeof value
    expect(back.big).toBe(10n)
    expect(back.nan).toBeNaN()
    expect(back.inf).toBe(Infinity)
    expect(back.ninf).toBe(-Infinity)
    expect(Object.is(back.nz, -0)).toBe(true)
    expect('u' in back && back.u === undefined).toBe(true)
  })

  it('round-trips Map, Set, Date, RegExp, typed arrays, ArrayBuffer and Error', () => {
    const value = [
      new Map<unknown, unknown>([[{ k: 1 }, new Set([1, 2n])]]),
      new Date(1732270000000),
      /a+b/gi,
      new Uint8Array([1, 2, 255]),
      new Float64Array([1.5, Number.NaN]),
      new BigInt64Array([-5n]),
      new Uint8Array([9, 8]).buffer,
      new RangeError('boom'),
    ]
    expect(roundTrip(value)).toStrictEqual(value)
  })

  it('round-trips cycles and shared references as the same objects', () => {
    const shared = { s: 1 }
    const root: Record<string, unknown> = { a: shared, b: shared, m: new Map([['x', shared]]) }
    root.self = root
    const back = roundTrip(root) as Record<string, unknown>
    expect(back.self).toBe(back)
    expect(back.a).toBe(back.b)
    expect((back.m as Map<string, unknown>).get('x')).toBe(back.a)
  })

  it('escapes a plain object that has a "$t" key', () => {
    const value = { $t: 'bigint', v: '10' }
    expect(roundTrip(value)).toStrictEqual(value)
  })

  it('keeps a "__proto__" key as data, not as the prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}}') as object
    const back = roundTrip(value) as Record<string, unknown>
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.hasOwn(back, '__proto__')).toBe(true)
  })

  it('gives equal canonical text for objects whose keys were added in another order', () => {
    expect(stringify({ a: 1, b: 2 }, { canonical: true })).toBe(stringify({ b: 2, a: 1 }, { canonical: true }))
  })

  it('tells apart values JSON.stringify confuses: Map {k:1} vs {k:2}, Set {1} vs {2}, null vs NaN', () => {
    const text = (v: unknown) => stringify(v, { canonical: true })
    expect(text(new Map([['k', 1]]))).not.toBe(text(new Map([['k', 2]])))
    expect(text(new Set([1]))).not.toBe(text(new Set([2])))
    expect(text(null)).not.toBe(text(Number.NaN))
  })

  it('refuses nesting deeper than MAX_DEPTH with ERR_OUTPUT_NOT_CLONEABLE, not a RangeError', () => {
    let deep: unknown = 0
    for (let i = 0; i < 10_000; i++) deep = { d: deep }
    expect(() => encode(deep)).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_NOT_CLONEABLE', message: expect.stringContaining(`${MAX_DEPTH} levels`) }))
  })

  it('refuses functions and symbols', () => {
    expect(() => encode({ f: () => 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_NOT_CLONEABLE' }))
    expect(() => encode(Symbol('s'))).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_NOT_CLONEABLE' }))
  })

  it('refuses an unknown tag when decoding', () => {
    expect(() => decode({ $t: 'nope' })).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_NOT_CLONEABLE' }))
  })
})

describe('codec, plain (troupe run --json)', () => {
  it('writes a shared error object out in full each time instead of {"$t":"ref"} (regression: --json errors came out as refs)', () => {
    const error = { code: 'ERR_DEPENDENCY_FAILED', message: 'a failed' }
    const result = { tasks: { b: { error }, c: { error } }, error }
    const text = stringify(result, { plain: true })
    expect(text).not.toContain('$t')
    expect(JSON.parse(text)).toEqual({ tasks: { b: { error }, c: { error } }, error })
  })

  it('leaves undefined properties out, as JSON does', () => {
    expect(stringify({ a: 1, b: undefined }, { plain: true })).toBe('{"a":1}')
  })

  it('keeps a ref for a cycle only, and parse reads it back', () => {
    const node: Record<string, unknown> = { name: 'n' }
    node.self = node
    const shared = { x: 1 }
    const value = { node, left: shared, right: shared }
    const back = parse(stringify(value, { plain: true })) as { node: { self: unknown }; left: unknown; right: unknown }
    expect(back.node.self).toBe(back.node)
    expect(back.left).toEqual({ x: 1 })
    expect(back.right).toEqual({ x: 1 })
  })
})

const ANYTHING = {
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withNullPrototype: true,
  withSparseArray: true,
}

describe('stringify of plain JSON', () => {
  it('writes the same text as the tagged encoding for any value (the plain-JSON shortcut changes no byte)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything(ANYTHING)), (value) => {
        expect(stringify(value)).toBe(JSON.stringify(encode(value)))
      }),
      { numRuns: 500 },
    )
  })

  it('keeps tags for what plain JSON cannot say: -0, undefined, a $t key, a shared object', () => {
    const shared = { a: 1 }
    expect(stringify({ n: -0, u: undefined, o: { $t: 'x' }, s: [shared, shared] })).toBe(
      '{"n":{"$t":"number","v":"-0"},"u":{"$t":"undefined"},"o":{"$t":"object","v":{"$t":"x"}},"s":[{"a":1},{"$t":"ref","v":3}]}',
    )
  })

  it('isPlain: true exactly for values a record may hold as JSON.stringify writes them', () => {
    fc.assert(
      fc.property(fc.anything({ withMap: true, withSet: true, withDate: true, withNullPrototype: true }), (value) => {
        expect(isPlain(value)).toBe(value !== undefined && stringify({ v: value }) === JSON.stringify({ v: value }))
      }),
    )
  })
})
