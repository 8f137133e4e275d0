import { createRequire } from 'node:module'
import type Jexl from 'jexl'
import { TroupeError } from '../core/errors.ts'

let instance: typeof Jexl | undefined
/** jexl (~20 ms to load), required by the first `when` condition: most plans have none. */
export function jexl(): typeof Jexl {
  return (instance ??= createRequire(import.meta.url)('jexl') as typeof Jexl)
}

/**
 * A task's `when` condition: a jexl expression over `deps.ID.output…` and `input…` with
 * JavaScript-style operators (`== != < <= > >= && || !`, `?:`, `in`), no eval and no
 * functions. Validated here; evaluated by the run when the task's dependencies are done.
 */

const ROOTS = ['deps', 'input'] as const
/** Members every object inherits: never data a condition may read (`input.constructor.constructor` is Function). */
const PROTOTYPE_MEMBERS: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype'])

/** A node of jexl's AST (the parts this module reads). */
interface Node {
  readonly type: string
  readonly value?: unknown
  readonly from?: Node
  readonly relative?: boolean
  readonly subject?: Node
  readonly expr?: Node
  readonly left?: Node
  readonly right?: Node
  readonly test?: Node
  readonly consequent?: Node
  readonly alternate?: Node
  readonly args?: readonly Node[]
  readonly name?: string
}

/**
 * Checks the syntax of `source` and that every `deps.X` names one of `dependencies`.
 * Returns the task ids the condition reads. Throws ERR_PLAN_INVALID naming `field`.
 */
export function checkCondition(source: string, field: string, taskId: string, dependencies: ReadonlySet<string>): string[] {
  const bad = (why: string) => new TroupeError('ERR_PLAN_INVALID', `Invalid plan: \`${field}\` is ${JSON.stringify(source)}: ${why}`)
  let ast: Node | undefined
  try {
    ast = jexl().compile(source)._getAst() as Node | undefined
  } catch (error) {
    throw bad(`not a valid expression (${(error as Error).message}); expected e.g. "deps.check.output.ok == true && input.env != 'prod'"`)
  }
  if (ast === undefined) throw bad('the expression is empty')
  const reads = new Set<string>()
  const stack: Node[] = [ast]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (node.type === 'FunctionCall') throw bad(`calls ${JSON.stringify(node.name)}, but conditions have no functions or transforms`)
    if (node.type === 'Identifier' && node.from === undefined && node.relative !== true) {
      if (!ROOTS.includes(node.value as never)) throw bad(`reads ${JSON.stringify(node.value)}; a condition may read only deps.TASK_ID.output… and input…`)
    }
    const dep = dependencyOf(node)
    if (dep === null) throw bad('names a dependency through a computed key; write deps.TASK_ID or deps["TASK_ID"]')
    if (dep !== undefined) {
      if (!dependencies.has(dep)) throw bad(`reads deps.${dep}, but "${dep}" is not a dependency of task "${taskId}"; add it to its \`dependsOn\``)
      reads.add(dep)
    }
    const member = memberOf(node)
    if (member === null) throw bad('reads a member through a computed key; index with a literal: input.list[0], input["key"]')
    if (member !== undefined && PROTOTYPE_MEMBERS.has(member)) {
      throw bad(`reads ${JSON.stringify(member)}, a member every object inherits; a condition may read only data`)
    }
    for (const child of [node.from, node.subject, node.expr, node.left, node.right, node.test, node.consequent, node.alternate, ...(node.args ?? [])]) {
      if (child !== undefined) stack.push(child)
    }
    if (node.type === 'ArrayLiteral' && Array.isArray(node.value)) stack.push(...(node.value as Node[]))
    if (node.type === 'ObjectLiteral' && typeof node.value === 'object' && node.value !== null) stack.push(...(Object.values(node.value) as Node[]))
  }
  return [...reads]
}

/**
 * The member name `node` reads from another value (`a.b`, `a['b']`), null for a computed key
 * (`a[expr]`), else undefined. Filters relative to the subject (`list[.x > 1]`) read no member.
 */
function memberOf(node: Node): string | null | undefined {
  if (node.type === 'Identifier' && node.from !== undefined) return String(node.value)
  if (node.type !== 'FilterExpression' || node.relative === true || node.expr === undefined) return undefined
  if (node.expr.type !== 'Literal') return null
  const key = node.expr.value
  return typeof key === 'string' ? key : typeof key === 'number' ? undefined : null
}

/** The task id `node` selects from `deps` (`deps.X` or `deps['X']`), null for a computed key, else undefined. */
function dependencyOf(node: Node): string | null | undefined {
  const isDeps = (n: Node | undefined) => n?.type === 'Identifier' && n.value === 'deps' && n.from === undefined && n.relative !== true
  if (node.type === 'Identifier' && isDeps(node.from)) return String(node.value)
  if (node.type === 'FilterExpression' && isDeps(node.subject)) {
    return node.expr?.type === 'Literal' && typeof node.expr.value === 'string' ? node.expr.value : null
  }
  return undefined
}
