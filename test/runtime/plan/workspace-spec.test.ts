import { describe, expect, it } from 'vitest'
import { parseWorkspaceSpec, renderIntegrationBranch } from '../../../src/runtime/plan/workspace-spec.ts'
import { troupeErrorOf } from '../../helpers/errors.ts'

const tasks = [{ id: 'a' }, { id: 'b', workspace: 'none' }, { id: 'c', workspace: 'worktree' }]

describe('parseWorkspaceSpec', () => {
  it('is undefined when no task uses a worktree', () => {
    expect(parseWorkspaceSpec({}, [{ id: 'a' }])).toBeUndefined()
  })

  it('takes the plan default for tasks without their own workspace key', () => {
    expect([...parseWorkspaceSpec({ workspace: 'worktree' }, tasks)!.taskIds]).toEqual(['a', 'c'])
    expect([...parseWorkspaceSpec({}, tasks)!.taskIds]).toEqual(['c'])
  })

  it('reads integration, setup and copy', () => {
    const spec = parseWorkspaceSpec({ workspace: 'worktree', integration: { branch: 'ai/{{run.id}}', verify: ['npm', 'test'] }, setup: 'npm ci', copy: ['.env'] }, tasks)!
    expect(spec).toMatchObject({ integrationBranch: 'ai/{{run.id}}', verify: ['npm', 'test'], setup: 'npm ci', copy: ['.env'] })
    expect(renderIntegrationBranch(spec.integrationBranch, 'r7')).toBe('ai/r7')
  })

  it('rejects an unknown workspace mode naming the task, the value and the allowed ones', () => {
    const error = troupeErrorOf(() => parseWorkspaceSpec({}, [{ id: 'a', workspace: 'docker' }]))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toBe('Plan field `tasks[0] ("a").workspace` is `"docker"` (string); expected one of "none", "worktree"')
  })

  it('rejects an empty verify command', () => {
    const error = troupeErrorOf(() => parseWorkspaceSpec({ workspace: 'worktree', integration: { verify: [] } }, tasks))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('`integration.verify`')
  })

  it('rejects an integration branch git cannot name', () => {
    const error = troupeErrorOf(() => parseWorkspaceSpec({ workspace: 'worktree', integration: { branch: 'a..b' } }, tasks))
    expect(error.code).toBe('ERR_PLAN_INVALID')
    expect(error.message).toContain('`integration.branch`')
  })

  it('rejects an integration branch among the task branches or where git cannot put it', () => {
    for (const branch of ['troupe/{{run.id}}', 'troupe/{{run.id}}/main']) {
      const error = troupeErrorOf(() => parseWorkspaceSpec({ workspace: 'worktree', integration: { branch } }, tasks))
      expect(error.code).toBe('ERR_PLAN_INVALID')
      expect(error.message).toContain('a branch outside troupe/{{run.id}}/')
    }
    expect(parseWorkspaceSpec({ workspace: 'worktree', integration: { branch: 'troupe/{{run.id}}/integration' } }, tasks)?.integrationBranch).toBe('troupe/{{run.id}}/integration')
  })

  it('rejects an unknown integration key', () => {
    expect(troupeErrorOf(() => parseWorkspaceSpec({ integration: { brnch: 'x' } }, tasks)).message).toContain('`integration.brnch` is not an integration key')
  })

  it('rejects copy that is not an array of paths', () => {
    expect(troupeErrorOf(() => parseWorkspaceSpec({ copy: '.env' }, tasks)).code).toBe('ERR_PLAN_INVALID')
  })
})
