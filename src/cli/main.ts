#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander'
import { STRATEGIES, type Strategy } from '../runtime/plan.ts'
import { EXIT, reportError } from './exit-codes.ts'
import { runCommand } from './run-command.ts'

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1, got "${value}"`)
    return n
  }
}

/** Builds the `troupe` command line. `exit` receives the exit code of the chosen command. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('troupe')
    .description('Run many agents in parallel: plans of tasks as XState actors on worker threads.')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })

  program
    .command('run')
    .description('run a plan (JSON or YAML) with live progress on stderr')
    .argument('<plan>', 'plan file')
    .option('--max-parallel <n>', 'tasks run at once at most', positiveInt('--max-parallel'))
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy').choices(STRATEGIES))
    .option('--config <file>', 'config file (default: ./troupe.config.json if present)')
    .option('--run-id <id>', 'name the run; an existing journal with this id resumes it')
    .option('--json', 'print the RunResult as one JSON document on stdout')
    .option('--quiet', 'print only the summary')
    .option('--no-progress', 'plain line-per-event output')
    .action(async (plan: string, options: { maxParallel?: number; strategy?: Strategy; config?: string; runId?: string; json?: boolean; quiet?: boolean; progress?: boolean }) => {
      exit(await runCommand(plan, options))
    })

  return program
}

async function main(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.ok
  const program = buildProgram((c) => (code = c))
  try {
    await program.parseAsync(argv as string[])
    return code
  } catch (error) {
    const commanderError = error as { code?: string; exitCode?: number }
    if (typeof commanderError.code === 'string' && commanderError.code.startsWith('commander.')) {
      // Help and version exit 0; every usage error is invalid input.
      return commanderError.exitCode === 0 ? EXIT.ok : EXIT.invalidInput
    }
    return reportError(error)
  }
}

process.exitCode = await main(process.argv)
