import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createRuntime, type Plan } from '../../../../src/index.ts'
import { survivors } from '../../../../src/bench/survivors.ts'
import { CLI_ENTRY } from '../../../helpers/cli.ts'
import { exited, until } from '../../../helpers/journal-file.ts'

/**
 * Descendants that leave the attempt's process group (issue 21 item 2): Gemini's shell tool
 * starts commands with `setsid`. They must die with the attempt — on timeout and on cancel.
 */

const config = { maxParallel: 2, governor: { enabled: false }, checkpoint: { enabled: false }, cancelGraceMs: 300, pool: { minThreads: 1, maxThreads: 1 } }

/** A grandchild in a session of its own; with `scrub`, it also drops troupe's environment tag (found by its parent then). */
const SETSID = 'setsid sleep 173 & sleep 30'
const SETSID_SCRUBBED = 'env -u TROUPE_PROCESS_TAG -u TROUPE_RUN_DIR setsid sleep 173 & sleep 30'

function plan(mark: string, script: string, timeoutMs = 60_000): Plan {
  return {
    name: 'escaped',
    agents: { x: { kind: 'command', run: ['bash', '-c', script], env: { TROUPE_MARK: mark } } },
    tasks: [{ id: 't', agent: 'x', retries: 0, timeoutMs }],
  } as Plan
}

const sessionLeaders = (mark: string) => survivors(mark).filter(({ pid, pgrp }) => pid === pgrp)

describe('a setsid grandchild', () => {
  for (const [name, script] of [['tagged', SETSID], ['without the environment tag', SETSID_SCRUBBED]] as const) {
    it(`is killed when the attempt times out (${name})`, { timeout: 60_000 }, async () => {
      const mark = `timeout-${Math.random().toString(36).slice(2)}`
      const runtime = createRuntime({ config })
      const run = runtime.run(plan(mark, script, 1_500))
      await until(() => sessionLeaders(mark).length >= 2, 'the setsid grandchild to start')
      const result = await run.result
      expect(result.tasks.t!.error?.code).toBe('ERR_TASK_TIMEOUT')
      await until(() => survivors(mark).length === 0, 'every process of the attempt to end', 10_000)
      await runtime.close()
    })

    it(`is killed when the run is cancelled (${name})`, { timeout: 60_000 }, async () => {
      const mark = `cancel-${Math.random().toString(36).slice(2)}`
      const runtime = createRuntime({ config })
      const run = runtime.run(plan(mark, script))
      await until(() => sessionLeaders(mark).length >= 2, 'the setsid grandchild to start')
      await run.cancel('test')
      expect((await run.result).tasks.t!.state).toBe('CANCELLED')
      await until(() => survivors(mark).length === 0, 'every process of the attempt to end', 10_000)
      await runtime.close()
    })
  }

  it('is killed when troupe run gets SIGTERM', { timeout: 120_000 }, async () => {
    const mark = `sigterm-${Math.random().toString(36).slice(2)}`
    const dir = mkdtempSync(join(tmpdir(), 'troupe-setsid-'))
    writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 1, maxThreads: 1 }, cancelGraceMs: 300 }))
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan(mark, SETSID)))
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI_ENTRY, 'run', 'plan.json', '--quiet'], { cwd: dir, stdio: 'ignore' })
    const exit = exited(child)
    await until(() => sessionLeaders(mark).length >= 2, 'the setsid grandchild to start', 60_000)
    child.kill('SIGTERM')
    expect(await exit).toBe(130)
    await until(() => survivors(mark).length === 0, 'every process of the attempt to end', 10_000)
    rmSync(dir, { recursive: true, force: true })
  })
})
