import { describe, expect, it } from 'vitest'
import type { CliAgentSpec } from '../../../../src/runtime/plan/agent-spec.ts'
import { claudeCode } from '../../../../src/runtime/execution/processes/claude-code.ts'
import { codex } from '../../../../src/runtime/execution/processes/codex.ts'
import { gemini } from '../../../../src/runtime/execution/processes/gemini.ts'
import { callCost, oneLine, permissionOf } from '../../../../src/runtime/execution/processes/cli-driver.ts'

describe('CLI driver error text', () => {
  it('puts a multi-line, coloured stderr tail on one line without control characters (regression: shown as �)', () => {
    const text = 'Agent "a" exited with code 1; stderr:\n\u001b[31mError:\u001b[0m boom\r\n  at x\n\n\u0007done'
    expect(oneLine(text)).toBe('Agent "a" exited with code 1; stderr: Error: boom | at x | done')
  })
})

describe('CLI call cost', () => {
  it('prices cached input at cachedInputUsdPerMTok, else at the input price', () => {
    const price = { inputUsdPerMTok: 3, outputUsdPerMTok: 15, cachedInputUsdPerMTok: 0.3 }
    expect(callCost(price, 1_000_000, 1_000_000, 1_000_000)).toBeCloseTo(18.3)
    expect(callCost({ inputUsdPerMTok: 3, outputUsdPerMTok: 15 }, 1_000_000, 1_000_000, 0)).toBeCloseTo(6)
  })
})

describe('CLI permissions', () => {
  const spec = (permissions?: 'read-only' | 'edit' | 'full') => ({ permissions }) as unknown as CliAgentSpec

  it('defaults to edit in a worktree and read-only outside one', () => {
    expect(permissionOf(spec(), '/repo/.troupe/r/worktrees/a')).toBe('edit')
    expect(permissionOf(spec(), undefined)).toBe('read-only')
    expect(permissionOf(spec('full'), undefined)).toBe('full')
  })

  it('maps each level to Claude Code\'s --permission-mode', () => {
    expect(['read-only', 'edit', 'full'].map((p) => claudeCode.permissionArgs(p as 'edit'))).toEqual([
      ['--permission-mode', 'dontAsk'],
      ['--permission-mode', 'acceptEdits'],
      ['--permission-mode', 'bypassPermissions'],
    ])
    const argv = claudeCode.argv('opus', ['--max-turns', '3'], 'edit')
    expect(argv).toEqual(['-p', '--output-format', 'stream-json', '--verbose', '--model', 'opus', '--permission-mode', 'acceptEdits', '--max-turns', '3'])
  })
})

describe('CLI resume flags (a repair continues the attempt\'s session)', () => {
  it('Claude Code: --resume <session id>', () => {
    const argv = claudeCode.argv(undefined, [], 'edit', 'abc-123')
    expect(argv).toEqual(['-p', '--output-format', 'stream-json', '--verbose', '--resume', 'abc-123', '--permission-mode', 'acceptEdits'])
  })

  it('Codex: `codex exec [options] resume <id> -`, the prompt still on stdin', () => {
    const argv = codex.argv('m', ['--x'], 'edit', 'th-1')
    expect(argv).toEqual(['exec', '--json', '--skip-git-repo-check', '-s', 'workspace-write', '-m', 'm', '--x', 'resume', 'th-1', '-'])
  })

  it('Gemini: --resume <session id>', () => {
    expect(gemini.argv(undefined, [], 'edit', 's-9')).toContain('--resume')
    const argv = gemini.argv(undefined, [], 'edit', 's-9')
    expect(argv[argv.indexOf('--resume') + 1]).toBe('s-9')
  })

  it('no resume flag without a session', () => {
    for (const parser of [claudeCode, codex, gemini]) expect(parser.argv(undefined, [], 'edit').join(' ')).not.toMatch(/resume/)
  })
})
