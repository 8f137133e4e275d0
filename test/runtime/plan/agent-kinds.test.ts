import { describe, expect, it } from 'vitest'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const compile = (agents: Record<string, unknown>, tasks: unknown[]) => compilePlan({ name: 'p', agents, tasks }, { baseDir: import.meta.dirname })

describe('agent kinds', () => {
  it('compiles a CLI agent\'s permissions, and refuses an unknown level naming the field, the value and the levels', () => {
    const sh = { kind: 'claude-code', bin: '/bin/sh' }
    const plan = compile({ c: { ...sh, permissions: 'full' } }, [{ id: 'a', agent: 'c', input: { prompt: 'hi' } }])
    expect(plan.tasks[0]!.agentSpec).toMatchObject({ kind: 'claude-code', permissions: 'full' })
    const error = troupeErrorOf(() => compile({ c: { ...sh, permissions: 'write' } }, [{ id: 'a', agent: 'c', input: { prompt: 'hi' } }]))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toMatch(/agents\.c\.permissions/)
    expect(error.message).toContain('"write"')
    expect(error.message).toContain('"read-only", "edit", "full"')
  })

  it('compiles a command agent in argv form to its executable on PATH', () => {
    const plan = compile({ sh: { kind: 'command', run: ['sh', '-c', 'echo {{input.word}}'] } }, [{ id: 'a', agent: 'sh', input: { word: 'hi' } }])
    const agent = plan.tasks[0]!.agentSpec
    expect(agent.kind).toBe('command')
    expect(agent.kind === 'command' && agent.executable).toMatch(/\/sh$/)
  })

  it('rejects a command whose program is not on PATH with ERR_AGENT_UNAVAILABLE', () => {
    const error = troupeErrorOf(() => compile({ x: { kind: 'command', run: ['no-such-program-troupe'] } }, [{ id: 'a', agent: 'x' }]))
    expect(error.code).toBe('ERR_AGENT_UNAVAILABLE')
    expect(error.message).toContain('no-such-program-troupe')
  })

  it('rejects an LLM agent whose API key variable is not set with ERR_AGENT_UNAVAILABLE naming the variable', () => {
    const error = troupeErrorOf(() =>
      compile({ s: { kind: 'openai', model: 'm', apiKeyEnv: 'TROUPE_TEST_UNSET_KEY' } }, [{ id: 'a', agent: 's', input: { prompt: 'hi' } }]),
    )
    expect(error.code).toBe('ERR_AGENT_UNAVAILABLE')
    expect(error.message).toContain('TROUPE_TEST_UNSET_KEY')
  })

  it('rejects a template that reads a task which is not a dependency with ERR_PLAN_INVALID', () => {
    const error = troupeErrorOf(() =>
      compile({ sh: { kind: 'command', run: 'echo {{deps.b.output.stdout}}' } }, [
        { id: 'a', agent: 'sh', dependsOn: [] },
        { id: 'b', agent: 'sh' },
      ]),
    )
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('"b" is not a dependency of task "a"')
  })

  it('requires input.prompt for a CLI or LLM agent', () => {
    process.env.TROUPE_TEST_KEY = 'x'
    const error = troupeErrorOf(() => compile({ s: { kind: 'anthropic', model: 'm', apiKeyEnv: 'TROUPE_TEST_KEY' } }, [{ id: 'a', agent: 's' }]))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('input.prompt')
  })

  it('rejects an unknown key of an agent entry with did-you-mean and the allowed keys', () => {
    const error = troupeErrorOf(() => compile({ sh: { kind: 'command', run: ['sh'], ouptut: 'json' } }, [{ id: 'a', agent: 'sh' }]))
    expect([error.code, error.message]).toEqual(['ERR_PLAN_INVALID', expect.stringContaining('`agents.sh.ouptut` is not a command agent key (did you mean "output"?); allowed keys: kind, description, run, cwd, env, output')])
  })

  it('reports every ill-typed field of an agent entry at once', () => {
    process.env.TROUPE_TEST_KEY = 'x'
    const error = troupeErrorOf(() =>
      compile({ s: { kind: 'openai', model: 'm', apiKeyEnv: 'TROUPE_TEST_KEY', baseUrl: 'ftp://x', temperature: 3 } }, [{ id: 'a', agent: 's', input: { prompt: 'p' } }]),
    )
    expect(error.message).toBe(
      'Invalid plan: `agents.s.baseUrl` is `"ftp://x"` (string): expected an http:// or https:// URL; `agents.s.temperature` is `3` (number): expected a number from 0 to 2',
    )
  })
})
