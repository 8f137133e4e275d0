import { describe, expect, it } from 'vitest'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const compile = (agents: Record<string, unknown>) =>
  compilePlan({ name: 'p', agents, tasks: [{ id: 'a', agent: 'x' }] }, { baseDir: import.meta.dirname })

describe('agent kind did-you-mean', () => {
  it('suggests "command" for kind "comand"', () => {
    const error = troupeErrorOf(() => compile({ x: { kind: 'comand', run: 'true' } }))
    expect([error.code, error.message]).toEqual([
      'ERR_PLAN_INVALID',
      'Invalid plan: `agents.x.kind` is `"comand"` (string): expected one of ' +
        '"module", "command", "claude-code", "codex", "gemini", "openai", "anthropic" (did you mean "command"?)',
    ])
  })

  it('suggests "gemini" for kind "gemeni"', () => {
    expect(troupeErrorOf(() => compile({ x: { kind: 'gemeni' } })).message).toContain('(did you mean "gemini"?)')
  })

  it('suggests "claude-code" for kind "claude", a prefix of one kind only', () => {
    expect(troupeErrorOf(() => compile({ x: { kind: 'claude' } })).message).toContain('(did you mean "claude-code"?)')
  })

  it('suggests nothing for a kind far from every kind', () => {
    expect(troupeErrorOf(() => compile({ x: { kind: 'spreadsheet' } })).message).not.toContain('did you mean')
  })
})
