import { TroupeError } from '../core/errors.ts'

/**
 * The one codec for everything troupe writes as JSON: journal records, result.json, the
 * CLI's `--json`, and definition hashes. It round-trips what structured clone allows.
 *
 * Plain JSON values are written as they are. Everything else becomes a tagged object
 * `{ "$t": TAG, ... }`:
 * - `{ "$t": "undefined" }`, `{ "$t": "number", "v": "NaN" | "Infinity" | "-Infinity" | "-0" }`
 * - `{ "$t": "bigint", "v": "10" }`, `{ "$t": "date", "v": 1732270000000 | null }`
 * - `{ "$t": "regexp", "source": "a+", "flags": "g" }`
 * - `{ "$t": "map", "v": [[key, value], …] }`, `{ "$t": "set", "v": [value, …] }`
 * - `{ "$t": "bytes", "type": "Uint8Array" | "ArrayBuffer" | …, "v": base64 }`
 * - `{ "$t": "error", "name", "message", "stack"?, "cause"? }`
 * - `{ "$t": "ref", "v": n }`: the n-th object met (0-based, depth first), for cycles and shared references
 * - `{ "$t": "object", "v": { … } }`: a plain object that itself has a `$t` key (escaped)
 */

/** Nesting deeper than this is refused with a clear error instead of overflowing the stack. */
export const MAX_DEPTH = 1000

export interface EncodeOptions {
  /** Sort object keys, so that equal values give equal text (for hashes). @default false */
  readonly canonical?: boolean
  /**
   * JSON for people and `jq` (`troupe run --json`): an object met again that is not its own
   * ancestor (a shared reference, e.g. one error object in several places) is written out in
   * full instead of as `{ "$t": "ref" }`, which is kept for cycles only; an `undefined` object
   * property is left out, as JSON.stringify does. Tags stay only where JSON cannot hold the
   * value. `parse` still reads it back (a shared reference comes back as copies). @default false
   */
  readonly plain?: boolean
}

const TYPED_ARRAYS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const

const ERROR_CLASSES = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError } as const

type TypedArrayName = keyof typeof TYPED_ARRAYS

/** Thrown for a value the codec cannot represent (a function, a symbol, too deep). */
export function codecError(message: string): TroupeError {
  return new TroupeError('ERR_OUTPUT_NOT_CLONEABLE', message)
}

/** `value` as a JSON-safe tree (see the module comment). Throws for functions, symbols, nesting over {@link MAX_DEPTH}. */
export function encode(value: unknown, options: EncodeOptions = {}): unknown {
  const seen = new Map<object, number>()
  const canonical = options.canonical ?? false
  const plain = options.plain ?? false
  // Plain: the objects on the current path only (by their number), and a count of every object met.
  const ancestors = new Map<object, number>()
  let met = 0

  const walk = (v: unknown, depth: number): unknown => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return v
      case 'number':
        if (Number.isFinite(v) && !Object.is(v, -0)) return v
        return { $t: 'number', v: Object.is(v, -0) ? '-0' : String(v) }
      case 'bigint':
        return { $t: 'bigint', v: v.toString() }
      case 'undefined':
        return { $t: 'undefined' }
      case 'function':
      case 'symbol':
        throw codecError(`Cannot encode a ${typeof v}: only structured-clone-able values can be journaled`)
    }
    if (v === null) return null
    const object = v as object
    const ref = plain ? ancestors.get(object) : seen.get(object)
    if (ref !== undefined) return { $t: 'ref', v: ref }
    if (depth >= MAX_DEPTH) throw codecError(`Cannot encode a value nested deeper than ${MAX_DEPTH} levels`)
    if (!plain) {
      seen.set(object, seen.size)
      return container(object, depth + 1)
    }
    ancestors.set(object, met++)
    try {
      return container(object, depth + 1)
    } finally {
      ancestors.delete(object)
    }
  }

  const container = (object: object, next: number): unknown => {
    if (Array.isArray(object)) {
      const out = new Array<unknown>(object.length)
      for (let i = 0; i < object.length; i++) out[i] = walk(object[i], next)
      return out
    }
    if (object instanceof Map) {
      const entries: unknown[] = []
      for (const [key, item] of object) entries.push([walk(key, next), walk(item, next)])
      return { $t: 'map', v: entries }
    }
    if (object instanceof Set) {
      const items: unknown[] = []
      for (const item of object) items.push(walk(item, next))
      return { $t: 'set', v: items }
    }
    if (object instanceof Date) {
      const time = object.getTime()
      return { $t: 'date', v: Number.isNaN(time) ? null : time }
    }
    if (object instanceof RegExp) return { $t: 'regexp', source: object.source, flags: object.flags }
    if (object instanceof ArrayBuffer) return { $t: 'bytes', type: 'ArrayBuffer', v: Buffer.from(object).toString('base64') }
    if (ArrayBuffer.isView(object)) {
      const type = object.constructor.name
      if (!(type in TYPED_ARRAYS) && type !== 'DataView' && type !== 'Buffer') throw codecError(`Cannot encode a ${type}`)
      const bytes = Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64')
      return { $t: 'bytes', type: type === 'Buffer' ? 'Uint8Array' : type, v: bytes }
    }
    if (object instanceof Error) {
      const out: Record<string, unknown> = { $t: 'error', name: object.name, message: object.message }
      if (object.stack !== undefined) out.stack = object.stack
      if ('cause' in object) out.cause = walk(object.cause, next)
      return out
    }
    const keys = Object.keys(object)
    if (canonical) keys.sort()
    const out: Record<string, unknown> = {}
    for (const key of keys) {
      const item = (object as Record<string, unknown>)[key]
      if (plain && item === undefined) continue
      define(out, key, walk(item, next))
    }
    return Object.hasOwn(object, '$t') ? { $t: 'object', v: out } : out
  }

  return walk(value, 0)
}

/** The value a tree made by {@link encode} stands for. Throws a TroupeError for a malformed tag. */
export function decode(tree: unknown): unknown {
  const objects: unknown[] = []

  const walk = (t: unknown, depth: number): unknown => {
    if (t === null || typeof t !== 'object') return t
    if (depth > 2 * MAX_DEPTH + 2) throw codecError(`Cannot decode a value nested deeper than ${MAX_DEPTH} levels`)
    const next = depth + 1
    if (Array.isArray(t)) {
      const out: unknown[] = []
      objects.push(out)
      for (const item of t) out.push(walk(item, next))
      return out
    }
    const node = t as Record<string, unknown>
    const tag = node.$t
    if (tag === undefined) return plain(node, next)
    switch (tag) {
      case 'undefined':
        return undefined
      case 'number':
        return node.v === '-0' ? -0 : Number(node.v)
      case 'bigint':
        return BigInt(String(node.v))
      case 'ref': {
        const index = node.v as number
        if (!(index >= 0 && index < objects.length)) throw codecError(`Malformed reference ${String(index)}`)
        return objects[index]
      }
      case 'object':
        return plain(node.v as Record<string, unknown>, next)
      case 'map': {
        const out = new Map()
        objects.push(out)
        for (const [key, item] of node.v as [unknown, unknown][]) {
          const k = walk(key, next)
          out.set(k, walk(item, next))
        }
        return out
      }
      case 'set': {
        const out = new Set()
        objects.push(out)
        for (const item of node.v as unknown[]) out.add(walk(item, next))
        return out
      }
      case 'date':
        return remember(new Date(node.v === null ? Number.NaN : (node.v as number)))
      case 'regexp':
        return remember(new RegExp(String(node.source), String(node.flags)))
      case 'bytes': {
        const bytes = Buffer.from(String(node.v), 'base64')
        const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
        const type = String(node.type)
        if (type === 'ArrayBuffer') return remember(buffer)
        if (type === 'DataView') return remember(new DataView(buffer))
        if (!(type in TYPED_ARRAYS)) throw codecError(`Malformed bytes type ${JSON.stringify(type)}`)
        return remember(new TYPED_ARRAYS[type as TypedArrayName](buffer))
      }
      case 'error': {
        const name = String(node.name)
        // Like structured clone: the built-in error classes come back as themselves.
        const ErrorClass = ERROR_CLASSES[name as keyof typeof ERROR_CLASSES] ?? Error
        const out = new ErrorClass(String(node.message))
        objects.push(out)
        if (out.name !== name) out.name = name
        if (node.stack === undefined) delete out.stack
        else out.stack = String(node.stack)
        if ('cause' in node) out.cause = walk(node.cause, next)
        return out
      }
      default:
        throw codecError(`Unknown tag ${JSON.stringify(tag)}`)
    }
  }

  const remember = <T>(value: T): T => {
    objects.push(value)
    return value
  }

  const plain = (node: Record<string, unknown>, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {}
    objects.push(out)
    for (const key of Object.keys(node)) define(out, key, walk(node[key], depth))
    return out
  }

  return walk(tree, 0)
}

/**
 * `value` as JSON text through {@link encode}. A value that is plain JSON already (what most
 * journal records and outputs are) is written as it is, without building the tagged copy.
 */
export function stringify(value: unknown, options: EncodeOptions & { readonly indent?: number } = {}): string {
  if (options.canonical !== true && isPlainJson(value, 0, new Set())) return JSON.stringify(value, null, options.indent)
  return JSON.stringify(encode(value, options), null, options.indent)
}

/** Whether `value`, nested in a record, is written by {@link stringify} as JSON.stringify writes it (see {@link isPlainJson}). */
export function isPlain(value: unknown): boolean {
  return value === null || typeof value !== 'object' ? isPlainJson(value, 1, undefined) : isPlainJson(value, 1, new Set())
}

/**
 * Whether {@link encode} would return `value` unchanged: strings, booleans, null, finite
 * numbers other than -0, and arrays and plain objects of those (no `$t` key, no hole, no
 * object met twice, not nested past {@link MAX_DEPTH}).
 */
function isPlainJson(value: unknown, depth: number, seen: Set<object> | undefined): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0)
    case 'object':
      break
    default:
      return false
  }
  if (value === null) return true
  if (depth >= MAX_DEPTH || seen!.has(value)) return false
  seen!.add(value)
  const proto = Object.getPrototypeOf(value) as unknown
  if (proto === Array.prototype) {
    const array = value as readonly unknown[]
    for (let i = 0; i < array.length; i++) if (!isPlainJson(array[i], depth + 1, seen)) return false
    return true
  }
  if (proto !== Object.prototype && proto !== null) return false
  if (Object.hasOwn(value, '$t')) return false
  const record = value as Record<string, unknown>
  for (const key in record) if (Object.hasOwn(record, key) && !isPlainJson(record[key], depth + 1, seen)) return false
  return true
}

/** The value JSON text written by {@link stringify} stands for. */
export function parse(text: string): unknown {
  return decode(JSON.parse(text))
}

/** Own data property, also for `__proto__` (plain assignment would set the prototype). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}
