import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import pc from 'picocolors'
import { loadConfig, type TroupeConfig } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import type { Plan } from '../runtime/plan/plan.ts'
import { createRuntime } from '../runtime/runtime.ts'
import { findConfigFile } from './config-file.ts'
import { EXIT } from './exit-codes.ts'
import { onInterrupt } from './interrupt.ts'
import { terminalText } from './terminal-text.ts'

export interface ExecCommandOptions {
  readonly maxParallel?: number
  readonly config?: string
}

/**
 * The plan `troupe exec` runs: one `command` task per command, named `1`, `2`, … The
 * command travels in the task's input and is substituted into an argv (`sh -c CMD`), where
 * substitution is raw, so the text is run exactly as typed (`{{…}}` in it is not a template).
 */
export function execPlan(commands: readonly string[]): Plan {
  return {
    name: 'exec',
    agents: { sh: { kind: 'command', run: ['/bin/sh', '-c', '{{input.command}}'] } },
    tasks: commands.map((command, i) => ({ id: String(i + 1), agent: 'sh', input: { command } })),
  }
}

/**
 * `troupe exec "cmd1" "cmd2" …`: runs shell commands in parallel without a plan file, each
 * output line prefixed with the command's number (`[1] …`). Exit code: 0 when every command
 * succeeded, else the exit code of the first command that failed (128 + signal number when a
 * signal killed it); which one failed is printed on stderr. No journal is written.
 */
export async function execCommand(commands: readonly string[], options: ExecCommandOptions): Promise<number> {
  if (commands.length === 0) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', 'troupe exec needs at least one command, e.g. troupe exec "npm run lint" "npm test"')
  }
  // The config as written, validated, then with the journal off: an ad-hoc run leaves nothing behind.
  const file = findConfigFile({ config: options.config })
  loadConfig({ file })
  const written = file === undefined ? {} : (JSON.parse(readFileSync(file, 'utf8')) as TroupeConfig)
  const runtime = createRuntime({ config: { ...written, checkpoint: { ...written.checkpoint, enabled: false } } })
  const maxParallel = options.maxParallel === undefined ? {} : { maxParallel: options.maxParallel }
  const run = runtime.run(execPlan(commands), { baseDir: process.cwd(), ...maxParallel })
  const width = String(commands.length).length
  const tag = (id: string) => pc.dim(`[${id.padStart(width)}]`)
  run.on('task:log', (e) => process.stdout.write(`${tag(e.taskId)} ${terminalText(e.message)}\n`))
  const failures: { id: string; code: number; why: string }[] = []
  run.on('task:state', (e) => {
    if (e.state !== 'FAILED') return
    const { code, why } = exitOf(e.error?.message ?? '')
    failures.push({ id: e.taskId, code, why })
  })
  let interrupted = false
  const interrupt = onInterrupt({
    graceful() {
      interrupted = true
      void run.cancel('Interrupted')
    },
    async force() {
      await Promise.race([runtime.close({ force: true }), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
      process.exit(EXIT.interrupted)
    },
  })
  try {
    const result = await run.result
    if (interrupted) return EXIT.interrupted
    if (result.error !== undefined) throw new TroupeError(result.error.code, result.error.message)
    const first = failures[0]
    if (first === undefined) return EXIT.ok
    const command = terminalText(commands[Number(first.id) - 1]!, 200)
    const failed = `${failures.length} of ${commands.length} command${commands.length === 1 ? '' : 's'} failed`
    process.stderr.write(`troupe: [${first.id}] ${command} ${first.why} — the first failure (${failed})\n`)
    return first.code
  } finally {
    interrupt.dispose()
    await runtime.close({ force: true })
  }
}

/** The exit code and the reason a failed command's message gives ("exited with code 3", "was killed by SIGTERM"). */
function exitOf(message: string): { code: number; why: string } {
  const exited = /exited with code (\d+)/.exec(message)
  if (exited !== null) return { code: Number(exited[1]), why: `exited with code ${exited[1]}` }
  const killed = /was killed by (SIG[A-Z0-9]+)/.exec(message)
  if (killed !== null) {
    const number = constants.signals[killed[1] as NodeJS.Signals]
    return { code: number === undefined ? 1 : 128 + number, why: `was killed by ${killed[1]}` }
  }
  return { code: EXIT.incomplete, why: `failed: ${terminalText(message.split('\n')[0] ?? '', 200)}` }
}
