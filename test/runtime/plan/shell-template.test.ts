import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parseShellTemplate, renderShellTemplate } from '../../../src/runtime/plan/shell-template.ts'
import type { TemplateScope } from '../../../src/runtime/plan/templates.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const scope = (input: unknown, deps: Record<string, unknown> = {}): TemplateScope => ({
  input,
  deps: new Map(Object.entries(deps)),
  taskId: 't',
  runId: 'r',
  attempt: 1,
  workspace: undefined,
  port: undefined,
})

/** What `/bin/sh` makes of a rendered script: the arguments printf received, one per line between brackets. */
const argsOf = (script: string): string => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' })

const HOSTILE = ['x; touch FILE', '$(touch FILE)', '`touch FILE`', "it's \"here\"!", 'a\\b  c', 'l1\nl2', '', '*', '~', '-n']
HOSTILE.push("'; exit 1; '")

describe('shell templates', () => {
  it.each(HOSTILE)('renders %j outside quotes as exactly one word', (value) => {
    const script = renderShellTemplate("printf '[%s]' {{input.v}}", scope({ v: value }), 'f')
    expect(argsOf(script)).toBe(`[${value}]`)
  })

  it.each(HOSTILE)('renders %j inside double quotes as part of the same word', (value) => {
    const script = renderShellTemplate(`printf '[%s]' "a {{input.v}} b"`, scope({ v: value }), 'f')
    expect(argsOf(script)).toBe(`[a ${value} b]`)
  })

  it.each(HOSTILE)('renders %j inside single quotes as part of the same word', (value) => {
    const script = renderShellTemplate(`printf '[%s]' 'a {{input.v}} b'`, scope({ v: value }), 'f')
    expect(argsOf(script)).toBe(`[a ${value} b]`)
  })

  it('renders a value inside $( ) within double quotes as one word of the inner command', () => {
    const script = renderShellTemplate(`printf '[%s]' "$(printf '%s' "{{input.v}}")"`, scope({ v: '$(echo pwned)' }), 'f')
    expect(argsOf(script)).toBe('[$(echo pwned)]')
  })

  it('renders a dependency output holding backticks as data', () => {
    const script = renderShellTemplate("printf '[%s]' {{deps.a.output.stdout}}", scope({}, { a: { stdout: '`echo pwned`\n' } }), 'f')
    expect(argsOf(script)).toBe('[`echo pwned`\n]')
  })

  it('keeps the script text outside references as written', () => {
    expect(renderShellTemplate('echo $HOME && ls | wc -l', scope({}), 'f')).toBe('echo $HOME && ls | wc -l')
  })

  it('refuses a reference inside backticks with ERR_PLAN_INVALID naming the field', () => {
    const error = troupeErrorOf(() => parseShellTemplate('echo `echo {{input.v}}`', 'agents.x.run'))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toMatch(/`agents\.x\.run` has a \{\{…\}\} inside backticks/)
  })

  it('refuses a reference in a comment', () => {
    const error = troupeErrorOf(() => parseShellTemplate('true # {{input.v}}', 'agents.x.run'))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toMatch(/inside a comment/)
  })

  it('refuses a reference after a here-document operator', () => {
    const error = troupeErrorOf(() => parseShellTemplate('cat <<EOF\n{{input.v}}\nEOF', 'agents.x.run'))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toMatch(/here-document/)
  })

  it('takes # inside a word as text, not a comment', () => {
    expect(() => parseShellTemplate('echo a#{{input.v}}', 'f')).not.toThrow()
  })
})
