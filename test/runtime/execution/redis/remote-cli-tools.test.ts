import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime } from '../../../../src/runtime/runtime.ts'
import { CLI_ENTRY } from '../../../helpers/cli.ts'
import { claudeEnv, startAnthropicServer, type AnthropicServer, type Script } from '../../../helpers/model-servers/anthropic.ts'
import { hasRealCli, realCliPath } from '../../../helpers/real-clis.ts'
import { startRedis, type TestRedis } from '../../../helpers/redis-server.ts'

const TSX = import.meta.resolve('tsx')
process.env.TROUPE_SECRET = 'test-secret-0123456789abcdef'
const root = join(import.meta.dirname, '..', '..', '..', '..')
const scratch = mkdtempSync(join(tmpdir(), 'troupe-remote-cli-'))
let redis: TestRedis | undefined
let server: AnthropicServer | undefined
let worker: ChildProcess | undefined

afterAll(async () => {
  if (worker !== undefined && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL')
  await server?.close()
  await redis?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

/** A tool result's content as text: a string, or text blocks. */
const resultText = (results: readonly { content: unknown }[]) =>
  results
    .map((r) => (typeof r.content === 'string' ? r.content : (r.content as { text?: string }[]).map((b) => b.text ?? '').join('')))
    .join('\n')

describe.runIf(hasRealCli('claude-code'))('run tools of a real claude CLI on a `troupe worker` process (scripted Messages API)', () => {
  it('send_message on the worker reaches the inbox of the task it names, read there with read_messages', async () => {
    const seen: string[] = []
    const script: Script = ({ session, turn, toolResults }) => {
      if (session === 'sender' && turn === 0) {
        return { toolUses: [{ name: 'mcp__troupe__send_message', input: { to: 'reader', text: 'remote hello 4711' } }] }
      }
      if (session === 'reader' && turn === 0) return { toolUses: [{ name: 'mcp__troupe__read_messages', input: {} }] }
      if (session === 'reader') seen.push(resultText(toolResults))
      return { text: `${session} done` }
    }
    redis = await startRedis()
    server = await startAnthropicServer(script)
    const env = claudeEnv(mkdtempSync(join(scratch, 'home-')), server.url)
    const plan = {
      name: 'remote-cli',
      agents: { talker: { kind: 'claude-code', bin: realCliPath('claude-code'), env, cwd: mkdtempSync(join(scratch, 'cwd-')) } },
      tasks: [
        { id: 'sender', agent: 'talker', retries: 0, input: { prompt: 'sender' } },
        { id: 'reader', agent: 'talker', retries: 0, dependsOn: ['sender'], input: { prompt: 'reader' } },
      ],
    } as Plan
    const planFile = join(scratch, 'plan.json')
    writeFileSync(planFile, JSON.stringify(plan))
    const target = redis.url
    worker = spawn(
      process.execPath,
      ['--import', TSX, CLI_ENTRY, 'worker', '--backend', target, '--concurrency', '1', '--name', 'cli-w', '--plan', planFile],
      {
        cwd: root,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    await new Promise<void>((resolve, reject) => {
      let err = ''
      worker!.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString()
        if (err.includes('taking attempts')) resolve()
      })
      worker!.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${err}`)))
    })
    const runtime = createRuntime({ config: { governor: { enabled: false }, checkpoint: { enabled: false } }, backend: target })
    const result = await runtime.run(plan).result
    await runtime.close()
    expect(result.status).toBe('completed')
    expect(result.tasks.sender!.worker).toBe('cli-w')
    const inbox = JSON.parse(seen[0]!) as { messages: { from: string; to: string; text: string }[]; total: number }
    expect(inbox.total).toBe(1)
    expect(inbox.messages[0]).toMatchObject({ from: 'sender', to: 'reader', text: 'remote hello 4711' })
  }, 120_000)
})
