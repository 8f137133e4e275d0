import { Worker } from 'node:worker_threads'

/**
 * piscina loads its entry with `require()` first; on Node 20.19+ and 22 that is `require(esm)`,
 * and a thread terminated while `require(esm)` instantiates the entry aborts the whole process
 * (V8: "IsGraphAsync must be used on an instantiated module"). Without `require(esm)` piscina
 * falls back to `import()`, which a termination ends cleanly.
 */
export const REQUIRE_ESM_OFF = '--no-experimental-require-module'

let forThisProcess: readonly string[] | undefined

/**
 * Node flags of pool threads: the process's own (a loader, `--conditions`, `--enable-source-maps`
 * reach agents as they reach the caller) and {@link REQUIRE_ESM_OFF}, less the flags a worker
 * refuses: V8 and process-wide options such as `--max-old-space-size`, `--stack-size`,
 * `--expose-gc` or `--title` make `new Worker` throw ERR_WORKER_INVALID_EXEC_ARGV (regression:
 * `node --max-old-space-size=4096 troupe run` failed every module agent with ERR_AGENT_LOAD).
 * Node names the refused flags when it throws; the answer is kept for the process.
 */
export function threadExecArgv(execArgv: readonly string[] = process.execArgv): readonly string[] {
  if (execArgv === process.execArgv && forThisProcess !== undefined) return forThisProcess
  const accepted = acceptedFlags(execArgv)
  if (execArgv === process.execArgv) forThisProcess = accepted
  return accepted
}

function acceptedFlags(execArgv: readonly string[]): readonly string[] {
  const candidate = [...execArgv, REQUIRE_ESM_OFF]
  if (execArgv.length === 0) return candidate
  try {
    // Node checks the flags as the worker is made; a worker it made is ended at once.
    const probe = new Worker('', { eval: true, execArgv: candidate, stdout: true, stderr: true })
    probe.unref()
    void probe.terminate()
    return candidate
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error
    const listed = String((error as Error).message).split(': ').slice(1).join(': ')
    const refused = new Set(listed.split(', '))
    const kept = candidate.filter((flag) => !refused.has(flag))
    // The message not understood: the flags that are surely accepted.
    return kept.length < candidate.length ? kept : [REQUIRE_ESM_OFF]
  }
}
