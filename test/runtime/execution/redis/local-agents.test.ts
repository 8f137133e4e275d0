import { describe, expect, it } from 'vitest'
import type { AgentSpec, CommandAgentSpec } from '../../../../src/runtime/plan/agent-spec.ts'
import { admitAgent } from '../../../../src/runtime/execution/redis/local-agents.ts'
import type { AttemptJob } from '../../../../src/runtime/execution/redis/protocol.ts'

const local: CommandAgentSpec = { name: 'x', kind: 'command', run: ['echo', 'hi'], cwd: undefined, env: { A: '1', B: '2' }, output: 'text', executable: '/bin/echo' }

/** The job as a worker gets it: the coordinator's spec crossed Redis as JSON (undefined members gone), keys in another order. */
function jobFor(agent: Record<string, unknown>): AttemptJob {
  const crossed = JSON.parse(JSON.stringify(agent)) as Record<string, unknown>
  const reordered = Object.fromEntries(Object.entries(crossed).reverse())
  return { request: { runId: 'r', taskId: 't', attempt: 1, agent: reordered as unknown as AgentSpec } } as unknown as AttemptJob
}

describe('admitAgent', () => {
  const agents = new Map<string, AgentSpec>([['x', local]])

  it('admits the JSON copy of an agent the worker defines the same, wherever its executable is', () => {
    const admission = admitAgent(jobFor({ ...local, env: { B: '2', A: '1' }, executable: '/usr/bin/echo' }), process.cwd(), agents)
    expect(admission).toMatchObject({ ok: true, request: { agent: local } })
  })

  it('refuses a job giving the agent another command', () => {
    const admission = admitAgent(jobFor({ ...local, run: ['rm', '-rf', '/'] }), process.cwd(), agents)
    expect(admission).toEqual({ ok: false, message: 'Agent "x" is defined differently in this worker\'s plan; update it' })
  })
})
