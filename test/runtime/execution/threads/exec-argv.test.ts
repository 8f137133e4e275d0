import { describe, expect, it } from 'vitest'
import { REQUIRE_ESM_OFF, threadExecArgv } from '../../../../src/runtime/execution/threads/exec-argv.ts'

describe('the Node flags pool threads start with', () => {
  it('keeps the flags a worker accepts, and turns require(esm) off', () => {
    expect(threadExecArgv(['--enable-source-maps', '--conditions=dev'])).toEqual(['--enable-source-maps', '--conditions=dev', REQUIRE_ESM_OFF])
  })

  it('drops V8 and process-wide flags, which make a worker throw ERR_WORKER_INVALID_EXEC_ARGV', () => {
    const flags = ['--max-old-space-size=4096', '--enable-source-maps', '--stack-size=2000', '--expose-gc', '--title=troupe']
    expect(threadExecArgv(flags)).toEqual(['--enable-source-maps', REQUIRE_ESM_OFF])
  })

  it('is the require(esm) flag alone for a process started without flags', () => {
    expect(threadExecArgv([])).toEqual([REQUIRE_ESM_OFF])
  })
})
