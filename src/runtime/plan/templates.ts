import { TroupeError } from '../core/errors.ts'

/**
 * `{{…}}` templates in agent definitions (`run`, `cwd`, `env`, `args`) and in `input.prompt`.
 * References: `input.PATH`, `deps.TASK_ID.output.PATH`, `task.id`, `run.id`, `attempt`,
 * `workspace`, `port`. Parsed once; rendered per attempt. Pure: no I/O, no eval.
 */

export type TemplateRef =
  | { readonly root: 'input'; readonly path: readonly string[] }
  | { readonly root: 'deps'; readonly task: string; readonly path: readonly string[] }
  | { readonly root: 'task.id' | 'run.id' | 'attempt' | 'workspace' | 'port' }

export type TemplatePart = string | TemplateRef

/** What a template is rendered against, for one attempt. */
export interface TemplateScope {
  readonly input: unknown
  /** Outputs of the task's direct dependencies, by task id. */
  readonly deps: ReadonlyMap<string, unknown>
  readonly taskId: string
  readonly runId: string
  readonly attempt: number
  readonly workspace: string | undefined
  readonly port: number | undefined
}

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g
const SEGMENT = /^[A-Za-z0-9_$-]+$/

/** Splits a template into literal text and references. Throws ERR_PLAN_INVALID naming `field` for a malformed one. */
export function parseTemplate(template: string, field: string): TemplatePart[] {
  const parts: TemplatePart[] = []
  let last = 0
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push(template.slice(last, match.index))
    parts.push(parseRef(match[1]!, field, template))
    last = match.index + match[0].length
  }
  if (last < template.length) parts.push(template.slice(last))
  return parts
}

function parseRef(expression: string, field: string, template: string): TemplateRef {
  const segments = expression.split('.')
  const bad = (why: string) =>
    new TroupeError(
      'ERR_PLAN_INVALID',
      `Invalid plan: \`${field}\` has template ${JSON.stringify(template)} with {{${expression}}}: ${why}; allowed: {{input.KEY}}, {{deps.TASK_ID.output.PATH}}, {{task.id}}, {{run.id}}, {{attempt}}, {{workspace}}, {{port}}`,
    )
  if (segments.some((s) => !SEGMENT.test(s))) throw bad('each part must be a plain name or index')
  const [root, ...rest] = segments
  if (root === 'input') return { root: 'input', path: rest }
  if (root === 'deps') {
    if (rest.length < 2 || rest[1] !== 'output') throw bad('expected deps.TASK_ID.output[.PATH]')
    return { root: 'deps', task: rest[0]!, path: rest.slice(2) }
  }
  if (expression === 'task.id' || expression === 'run.id' || expression === 'attempt' || expression === 'workspace' || expression === 'port') {
    return { root: expression }
  }
  throw bad('unknown reference')
}

/** The task ids a template reads through `deps.…`, so validation can require them to be dependencies. */
export function dependencyRefs(parts: readonly TemplatePart[]): string[] {
  return parts.flatMap((part) => (typeof part !== 'string' && part.root === 'deps' ? [part.task] : []))
}

/**
 * Renders parsed parts against a scope. A reference to a missing value renders as the
 * empty string; objects render as JSON. Throws a TypeError naming the reference when a
 * dependency is not in scope (a bug: validation requires template deps to be dependencies).
 */
export function renderTemplate(parts: readonly TemplatePart[], scope: TemplateScope): string {
  let out = ''
  for (const part of parts) out += typeof part === 'string' ? part : renderRef(part, scope)
  return out
}

/** One reference's value as text (as `renderTemplate` pastes it). */
export function renderRef(ref: TemplateRef, scope: TemplateScope): string {
  return stringify(resolveRef(ref, scope))
}

/** Parses and renders in one step (for strings not parsed at validation). */
export function renderString(template: string, scope: TemplateScope, field: string): string {
  return template.includes('{{') ? renderTemplate(parseTemplate(template, field), scope) : template
}

function resolveRef(ref: TemplateRef, scope: TemplateScope): unknown {
  switch (ref.root) {
    case 'input':
      return walk(scope.input, ref.path)
    case 'deps':
      if (!scope.deps.has(ref.task)) throw new TypeError(`template reads deps.${ref.task}, which is not a dependency of task "${scope.taskId}"`)
      return walk(scope.deps.get(ref.task), ref.path)
    case 'task.id':
      return scope.taskId
    case 'run.id':
      return scope.runId
    case 'attempt':
      return scope.attempt
    case 'workspace':
      return scope.workspace
    case 'port':
      return scope.port
  }
}

function walk(value: unknown, path: readonly string[]): unknown {
  let at = value
  for (const key of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return undefined
    at = (at as Record<string, unknown>)[key]
  }
  return at
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  return JSON.stringify(value) ?? ''
}
