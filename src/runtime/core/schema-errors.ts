import type * as Exit from 'effect/Exit'
import type * as SchemaAST from 'effect/SchemaAST'
import * as SchemaIssue from 'effect/SchemaIssue'
import { didYouMean } from './did-you-mean.ts'
import { TroupeError, describeValue, type ErrorCode } from './errors.ts'

/**
 * One message style for every input troupe validates with effect Schema (plans, config,
 * options): `` `path` is VALUE: expected ALLOWED ``, one clause per problem, joined by `; `,
 * after a subject (`Invalid plan file x.yaml: …`). Unknown keys name the allowed keys and
 * the closest one.
 */

export interface IssueFormatOptions {
  /** Renders a path for a message. @default keys joined with `.`, indices as `[n]` */
  readonly formatPath?: (path: readonly PropertyKey[]) => string
  /**
   * A better guess for an unknown key than the allowed keys of its object, e.g. a config key
   * given as a runtime option: return the whole hint (`did you mean \`config.maxParallel\`?`).
   */
  readonly hintKey?: (key: string, path: readonly PropertyKey[]) => string | undefined
}

const formatLeaf = SchemaIssue.makeFormatterDefault()

/** The clauses describing a failed decode of `input`. */
export function issueLines(issue: SchemaIssue.Issue, input: unknown, options: IssueFormatOptions = {}): string[] {
  const formatPath = options.formatPath ?? formatKeyPath
  const lines: string[] = []
  // Iterative: issue trees can be as deep as the (bounded) input, and must never overflow the stack.
  const stack: [SchemaIssue.Issue, readonly PropertyKey[]][] = [[issue, []]]
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    switch (node._tag) {
      case 'Pointer':
        stack.push([node.issue, [...path, ...node.path]])
        break
      case 'Composite':
        for (let i = node.issues.length - 1; i >= 0; i--) stack.push([node.issues[i]!, path])
        break
      case 'UnexpectedKey':
        lines.push(unexpectedKey(node.ast, path, formatPath, options.hintKey))
        break
      case 'AnyOf': {
        // `optional(X)` is `X | undefined`: a value that fails X is best explained by X alone.
        const relevant = node.issues.filter((i) => !(i._tag === 'InvalidType' && i.ast._tag === 'Undefined'))
        const members = node.ast.types.filter((t) => t._tag !== 'Undefined')
        if (relevant.length === 1) stack.push([relevant[0]!, path])
        else if (relevant.length === 0 && members.length === 1) stack.push([new SchemaIssue.InvalidType(members[0]!), path])
        else lines.push(`\`${formatPath(path)}\` is ${describeValue(valueAt(input, path))}: ${lowerFirst(formatLeaf(node))}`)
        break
      }
      case 'MissingKey':
        lines.push(`\`${formatPath(path)}\` is missing: expected ${node.annotations?.messageMissingKey ?? 'a value'}`)
        break
      default:
        lines.push(`\`${formatPath(path)}\` is ${describeValue(valueAt(input, path))}: ${lowerFirst(formatLeaf(node))}`)
    }
  }
  return lines
}

/**
 * The decoded value of a successful `exit`, or a TroupeError with `code`:
 * `${subject}: clause; clause`.
 */
export function valueOrThrow<T>(exit: Exit.Exit<T, unknown>, input: unknown, code: ErrorCode, subject: string, options?: IssueFormatOptions): T {
  if (exit._tag === 'Success') return exit.value
  const reason = exit.cause.reasons.find((r) => r._tag === 'Fail')
  const error = reason?._tag === 'Fail' ? (reason.error as { issue?: unknown }) : undefined
  const lines = SchemaIssue.isIssue(error?.issue) ? issueLines(error.issue, input, options) : [String(exit.cause)]
  throw new TroupeError(code, `${subject}: ${lines.join('; ')}`)
}

/** `tasks[0].input.a` from `['tasks', 0, 'input', 'a']`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`
  return out || '(root)'
}

/** The value at `path` in `root`, reading own properties only (so `__proto__` is data, not the prototype). */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let at = root
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return undefined
    at = (at as Record<PropertyKey, unknown>)[key]
  }
  return at
}

function unexpectedKey(
  ast: SchemaAST.AST,
  path: readonly PropertyKey[],
  formatPath: (path: readonly PropertyKey[]) => string,
  hintKey: IssueFormatOptions['hintKey'],
): string {
  const key = String(path[path.length - 1])
  const allowed = ast._tag === 'Objects' ? ast.propertySignatures.map((p) => String(p.name)) : []
  const title = ast.annotations?.title
  const hint = hintKey?.(key, path.slice(0, -1))
  return (
    `\`${formatPath(path)}\` is not ${title === undefined ? 'an allowed key' : `a ${String(title)} key`}` +
    (hint === undefined ? didYouMean(key, allowed) : ` (${hint})`) +
    (allowed.length > 0 ? `; allowed keys: ${allowed.join(', ')}` : '')
  )
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1)
}
