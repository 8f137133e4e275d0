import { quote } from 'shell-quote'
import { TroupeError } from '../core/errors.ts'
import { parseTemplate, renderRef, type TemplateRef, type TemplateScope } from './templates.ts'

/**
 * A string `run` is a script for `/bin/sh -c`, so a value pasted into it raw would be code
 * (`x; rm -rf ~`, `$(…)`, backticks in a dependency's stdout). Each `{{…}}` in it is rendered
 * as one shell word holding the value exactly, quoted by shell-quote: outside quotes it is the
 * quoted word; inside `"…"` or `'…'` the quote is closed, the quoted word pasted and the quote
 * reopened, so `"hello {{input.name}}!"` still makes one word. Places where a quoted word would
 * be re-parsed or mean something else (inside backticks, a comment, after a here-document
 * operator) are refused at validation. Pure: no I/O.
 */

/** Where a reference sits in the script, as far as quoting goes. */
type QuoteContext = 'plain' | 'single' | 'double'

export type ShellPart = string | { readonly ref: TemplateRef; readonly context: QuoteContext }

type Frame = 'plain' | 'sub' | 'single' | 'double' | 'backtick' | 'comment'

/** Splits a shell `run` into literal script and references with their quoting context; throws ERR_PLAN_INVALID naming `field`. */
export function parseShellTemplate(template: string, field: string): ShellPart[] {
  const scanner = new ShellScanner()
  const parts: ShellPart[] = []
  for (const part of parseTemplate(template, field)) {
    if (typeof part === 'string') {
      scanner.scan(part)
      parts.push(part)
      continue
    }
    const refused = scanner.refusal()
    if (refused !== undefined) {
      throw new TroupeError(
        'ERR_PLAN_INVALID',
        `Invalid plan: \`${field}\` has a {{…}} ${refused} in ${JSON.stringify(template)}; ` +
          'a shell `run` takes each value as one quoted word, ' +
          'so write it outside backticks, comments and here-documents (or use the argv form [program, arg, …])',
      )
    }
    parts.push({ ref: part, context: scanner.context() })
    scanner.word()
  }
  return parts
}

/** Renders a shell `run` for one attempt: every value becomes one shell-quoted word. */
export function renderShellTemplate(template: string, scope: TemplateScope, field: string): string {
  let out = ''
  for (const part of parseShellTemplate(template, field)) {
    if (typeof part === 'string') {
      out += part
      continue
    }
    const word = quote([renderRef(part.ref, scope)])
    out += part.context === 'plain' ? word : part.context === 'double' ? `"${word}"` : `'${word}'`
  }
  return out
}

/**
 * Tracks the quoting state of POSIX sh text: quotes, backslashes, `$(…)`, backticks, comments
 * and here-documents. It only has to be right about where a reference lands; it does not
 * check the script (the shell does).
 */
class ShellScanner {
  readonly #stack: Frame[] = ['plain']
  #wordStart = true
  #hereDocument = false

  scan(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      const next = text[i + 1]
      const top = this.#stack.at(-1)!
      if (top === 'single') {
        if (c === "'") this.#stack.pop()
      } else if (top === 'comment') {
        if (c === '\n') this.#stack.pop()
      } else if (top === 'double' || top === 'backtick') {
        if (c === '\\') i++
        else if (c === (top === 'double' ? '"' : '`')) this.#stack.pop()
        else if (c === '`') this.#stack.push('backtick')
        else if (c === '$' && next === '(') (i++, this.#stack.push('sub'))
      } else {
        if (c === '\\') i++
        else if (c === "'") this.#stack.push('single')
        else if (c === '"') this.#stack.push('double')
        else if (c === '`') this.#stack.push('backtick')
        else if (c === '(') this.#stack.push('sub')
        else if (c === '$' && next === '(') (i++, this.#stack.push('sub'))
        else if (c === ')' && top === 'sub') this.#stack.pop()
        else if (c === '#' && this.#wordStart) this.#stack.push('comment')
        else if (c === '<' && next === '<' && text[i + 2] !== '<') this.#hereDocument = true
      }
      this.#wordStart = /[\s;&|()<>]/.test(c)
    }
  }

  /** After a reference the shell is inside a word. */
  word(): void {
    this.#wordStart = false
  }

  refusal(): string | undefined {
    if (this.#hereDocument) return 'after a here-document operator (<<)'
    if (this.#stack.includes('backtick')) return 'inside backticks'
    if (this.#stack.at(-1) === 'comment') return 'inside a comment'
    return undefined
  }

  context(): QuoteContext {
    const top = this.#stack.at(-1)!
    return top === 'single' ? 'single' : top === 'double' ? 'double' : 'plain'
  }
}
