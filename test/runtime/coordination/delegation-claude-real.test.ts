import { mkdtempSync, readFileSync, } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Plan } from '../../../src/runtime/plan/plan.ts'
import type { Script } from '../../helpers/model-servers/anthropic.ts'
import { realClaudeSuite } from '../../helpers/real-claude.ts'
import { hasRealCli } from '../../helpers/real-clis.ts'

// The REAL `claude` executable against a scripted Messages API: a lead delegates over the run's MCP tools.
const { claude, root, start } = realClaudeSuite('troupe-delegation-real-')

/** A tool result's content as text: a string, or text blocks. */
const resultText = (results: readonly { content: unknown }[]) =>
  results.map((r) => (typeof r.content === 'string' ? r.content : (r.content as { text?: string }[]).map((b) => b.text ?? '').join(''))).join('\n')

describe.runIf(hasRealCli('claude-code'))('delegation for CLI agents (the real claude CLI, scripted Messages API)', () => {
  it('acceptance: a lead adds two shell children with add_tasks, gets their outputs from wait_tasks in the same session, ends after them', async () => {
    const seen: { turn: number; text: string }[] = []
    const script: Script = ({ session, turn, toolResults }) => {
      if (session !== 'lead') return { text: 'not a lead' }
      if (turn > 0) seen.push({ turn, text: resultText(toolResults) })
      if (turn === 0) {
        const tasks = [
          { id: 'kid-a', agent: 'sh', input: { word: 'alpha-4711' } },
          { id: 'kid-b', agent: 'sh', input: { word: 'beta-4712' } },
        ]
        return { toolUses: [{ name: 'mcp__troupe__add_tasks', input: { tasks } }] }
      }
      if (turn === 1) return { toolUses: [{ name: 'mcp__troupe__wait_tasks', input: { ids: ['kid-a', 'kid-b'], timeout: 120 } }] }
      return { text: 'lead done' }
    }
    const config = { maxParallel: 1, pool: { minThreads: 0, maxThreads: 1 }, cancelGraceMs: 500, governor: { enabled: false }, checkpoint: { enabled: false } }
    const { runtime, server, env } = await start(script, config)
    const plan = {
      name: 'delegate',
      agents: {
        lead: { kind: 'claude-code', bin: claude, env, cwd: mkdtempSync(join(root, 'cwd-')) },
        sh: { kind: 'command', run: ['echo', 'child says {{input.word}}'] },
      },
      tasks: [{ id: 'lead', agent: 'lead', retries: 0, input: { prompt: 'lead' } }],
    } as Plan
    const run = runtime.run(plan)
    const ended: string[] = []
    const leadStates: string[] = []
    run.on('task:state', (e) => {
      if (e.taskId === 'lead') leadStates.push(e.state)
      if (e.state === 'COMPLETED') ended.push(e.taskId)
    })
    const result = await run.result
    expect(result.status).toBe('completed')
    expect(result.tasks.lead?.state).toBe('COMPLETED')
    // maxParallel 1: the children ran only because the waiting lead held no slot.
    expect(ended).toEqual(['kid-a', 'kid-b', 'lead'])
    expect(leadStates).toContain('WAITING')
    // One session: the wait_tasks result the model received (turn 2) holds both children's outputs.
    const wait = seen.find((s) => s.turn === 2)!
    const answer = JSON.parse(wait.text) as { timedOut: boolean; tasks: Record<string, { state: string; output?: string }> }
    expect(answer.timedOut).toBe(false)
    expect(answer.tasks['kid-a']).toMatchObject({ state: 'COMPLETED', output: expect.stringContaining('child says alpha-4711') })
    expect(answer.tasks['kid-b']).toMatchObject({ state: 'COMPLETED', output: expect.stringContaining('child says beta-4712') })
    expect(new Set(server.mainRequests('lead').map((r) => r.session))).toEqual(new Set(['lead']))
    expect(server.mainRequests('lead')).toHaveLength(3)
  }, 120_000)

  it('send_message / read_messages: a message sent in a run that failed is read by the task it names after resume (messages.jsonl)', async () => {
    let firstRun = true
    const read: string[] = []
    const script: Script = ({ session, turn, toolResults }) => {
      if (session === 'a') return turn === 0 ? { toolUses: [{ name: 'mcp__troupe__send_message', input: { to: 'b', text: 'api is in src/api.ts' } }] } : { text: 'sent' }
      if (firstRun) return { status: 400, message: 'b fails the first time' }
      if (turn === 0) return { toolUses: [{ name: 'mcp__troupe__read_messages', input: {} }] }
      read.push(resultText(toolResults))
      return { text: 'read' }
    }
    const dir = mkdtempSync(join(root, 'runs-'))
    const { runtime, server, env } = await start(script, { maxParallel: 2, cancelGraceMs: 500, governor: { enabled: false }, checkpoint: { dir } })
    const cwd = mkdtempSync(join(root, 'cwd-'))
    const plan = {
      name: 'mail',
      agents: { c: { kind: 'claude-code', bin: claude, env, cwd } },
      tasks: [
        { id: 'a', agent: 'c', retries: 0, input: { prompt: 'a' } },
        { id: 'b', agent: 'c', retries: 0, dependsOn: ['a'], input: { prompt: 'b' } },
      ],
    } as Plan
    const first = await runtime.run(plan, { runId: 'mail-1' }).result
    expect([first.tasks.a?.state, first.tasks.b?.state]).toEqual(['COMPLETED', 'FAILED'])
    expect(readFileSync(join(dir, 'mail-1', 'messages.jsonl'), 'utf8')).toContain('"from":"a","to":"b"')
    firstRun = false
    const resumed = await runtime.run(plan, { runId: 'mail-1' }).result
    expect(resumed.tasks.b?.state).toBe('COMPLETED')
    // `a` was reused, not run again: the message came back from the journal.
    expect(server.mainRequests('a')).toHaveLength(2)
    expect(JSON.parse(read[0]!)).toMatchObject({ messages: [{ seq: 0, from: 'a', to: 'b', text: 'api is in src/api.ts' }], total: 1 })
  }, 120_000)
})
