import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Plan } from '../../../../src/runtime/plan/plan.ts'
import { createRuntime, type Runtime } from '../../../../src/runtime/runtime.ts'

let runtime: Runtime

beforeAll(() => {
  runtime = createRuntime({
    config: { maxParallel: 4, pool: { minThreads: 1, maxThreads: 4 }, cancelGraceMs: 200, governor: { enabled: false }, checkpoint: { enabled: false } },
  })
})

afterAll(async () => {
  await runtime.close({ force: true })
})

const one = (agent: Record<string, unknown>, input: unknown = {}): Plan => ({ name: 'cmd', agents: { x: { kind: 'command', ...agent } }, tasks: [{ id: 't', agent: 'x', input }] }) as Plan

describe('command agents', () => {
  it('runs argv without a shell and returns exitCode, stdout and stderr', async () => {
    const result = await runtime.run(one({ run: ['node', '-e', 'console.log("out"); console.error("err")'] })).result
    expect(result.tasks.t).toMatchObject({ state: 'COMPLETED', output: { exitCode: 0, stdout: 'out\n', stderr: 'err\n' } })
  })

  it('runs a string through /bin/sh -c', async () => {
    const result = await runtime.run(one({ run: 'echo a && echo b | tr b c' })).result
    expect(result.tasks.t?.output).toMatchObject({ stdout: 'a\nc\n' })
  })

  it('renders input, task, run and attempt templates per attempt', async () => {
    const result = await runtime.run(one({ run: ['echo', '{{input.word}}', '{{task.id}}', '{{attempt}}'] }, { word: 'hi there' })).result
    expect(result.tasks.t?.output).toMatchObject({ stdout: 'hi there t 1\n' })
  })

  it('renders a dependency output into the next command', async () => {
    const plan = {
      name: 'deps',
      agents: { a: { kind: 'command', run: ['echo', '{"n": 41}'], output: 'json' }, b: { kind: 'command', run: ['echo', 'got {{deps.first.output.json.n}}'] } },
      tasks: [{ id: 'first', agent: 'a' }, { id: 'second', agent: 'b', dependsOn: ['first'] }],
    } as Plan
    const result = await runtime.run(plan).result
    expect(result.tasks.second?.output).toMatchObject({ stdout: 'got 41\n' })
  })

  it('merges env over the environment and runs in cwd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-cwd-'))
    const result = await runtime.run(one({ run: 'echo "$GREETING $(pwd)"', env: { GREETING: 'hello {{input.who}}' }, cwd: dir }, { who: 'you' })).result
    expect((result.tasks.t?.output as { stdout: string }).stdout).toBe(`hello you ${dir}\n`)
  })

  it('fails with ERR_COMMAND_FAILED naming the exit code and the stderr tail', async () => {
    const result = await runtime.run({ ...one({ run: 'echo boom >&2; exit 3' }), tasks: [{ id: 't', agent: 'x', retries: 0 }] } as Plan).result
    expect(result.tasks.t?.error?.code).toBe('ERR_COMMAND_FAILED')
    expect(result.tasks.t?.error?.message).toMatch(/exited with code 3; stderr:\nboom/)
  })

  it('fails with ERR_COMMAND_FAILED naming the signal that killed it', async () => {
    const result = await runtime.run({ ...one({ run: 'kill -SEGV $$' }), tasks: [{ id: 't', agent: 'x', retries: 0 }] } as Plan).result
    expect(result.tasks.t?.error?.message).toMatch(/was killed by SIGSEGV/)
  })

  it('parses stdout as JSON with output: json', async () => {
    const result = await runtime.run(one({ run: ['node', '-e', 'console.log(JSON.stringify({ ok: true, list: [1, 2] }))'], output: 'json' })).result
    expect(result.tasks.t?.output).toMatchObject({ json: { ok: true, list: [1, 2] } })
  })

  it('parses the last non-empty line with output: jsonl', async () => {
    const result = await runtime.run(one({ run: 'echo \'{"a":1}\'; echo \'{"a":2}\'; echo', output: 'jsonl' })).result
    expect(result.tasks.t?.output).toMatchObject({ json: { a: 2 } })
  })

  it('fails the attempt when output: json is not JSON', async () => {
    const result = await runtime.run({ ...one({ run: ['echo', 'not json'], output: 'json' }), tasks: [{ id: 't', agent: 'x', retries: 0 }] } as Plan).result
    expect(result.tasks.t?.error).toMatchObject({ code: 'ERR_COMMAND_FAILED', message: expect.stringMatching(/has output: json, but its stdout is not JSON/) })
  })

  it('streams lines to task:log and ::progress lines to task:progress', async () => {
    const run = runtime.run(one({ run: 'echo first; echo "::progress 0.5 half way"; echo second' }))
    const logs: string[] = []
    const progress: [number, string | undefined][] = []
    run.on('task:log', (e) => logs.push(e.message))
    run.on('task:progress', (e) => progress.push([e.fraction, e.message]))
    await run.result
    expect(logs).toEqual(['first', 'second'])
    expect(progress).toContainEqual([0.5, 'half way'])
  })

  it('keeps only a bounded tail of a huge stdout in the output', async () => {
    const result = await runtime.run(one({ run: ['node', '-e', 'for (let i = 0; i < 20000; i++) console.log("line " + i)'] })).result
    const stdout = (result.tasks.t?.output as { stdout: string }).stdout
    expect(stdout.length).toBeLessThan(20 * 1024)
    expect(stdout).toMatch(/^\[… \d+ earlier characters in the attempt log\]\n/)
    expect(stdout.endsWith('line 19999\n')).toBe(true)
  })

  it('writes each attempt\'s stdout and stderr once to its log and raw to its output file under the run directory (regression: every line twice)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-logs-'))
    const logged = createRuntime({ config: { pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: true, dir } } })
    try {
      const run = logged.run({ ...one({ run: 'echo to-out; echo to-err >&2' }), name: 'logs' })
      await run.result
      const log = readFileSync(join(dir, run.id, 'logs', 't', '1.log'), 'utf8')
      expect(log.split('\n').sort()).toEqual(['', 'to-err', 'to-out'])
      const output = readFileSync(join(dir, run.id, 'logs', 't', '1.output.log'), 'utf8')
      expect(output.split('\n').sort()).toEqual(['', 'to-err', 'to-out'])
    } finally {
      await logged.close({ force: true })
    }
  })

  it('opens no output file for an attempt that prints nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-logs-'))
    const config = { pool: { minThreads: 1, maxThreads: 1 }, governor: { enabled: false }, checkpoint: { enabled: true, dir } }
    const logged = createRuntime({ config })
    try {
      const run = logged.run({ ...one({ run: ['true'] }), name: 'silent' })
      expect((await run.result).tasks.t!.state).toBe('COMPLETED')
      expect(existsSync(join(dir, run.id, 'logs', 't', '1.output.log'))).toBe(false)
    } finally {
      await logged.close({ force: true })
    }
  })

  it('sets TROUPE_RUN_ID, TROUPE_TASK_ID and TROUPE_ATTEMPT for the process', async () => {
    const mark = randomUUID()
    const run = runtime.run(one({ run: 'echo $TROUPE_TASK_ID/$TROUPE_ATTEMPT/$TROUPE_MARK', env: { TROUPE_MARK: mark } }))
    const result = await run.result
    expect(result.tasks.t?.output).toMatchObject({ stdout: `t/1/${mark}\n` })
  })

  it('names the missing working directory, not the executable, when cwd does not exist (regression: reported as "spawn echo ENOENT")', async () => {
    const cwd = join(tmpdir(), `troupe-no-such-dir-${randomUUID()}`)
    const result = await runtime.run({ ...one({ run: ['echo', 'x'], cwd }), tasks: [{ id: 't', agent: 'x', retries: 0 }] } as Plan).result
    expect(result.tasks.t?.error?.code).toBe('ERR_COMMAND_FAILED')
    expect(result.tasks.t?.error?.message).toContain(`its working directory ${cwd} does not exist`)
  })
})
