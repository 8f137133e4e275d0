#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Argument, Command, InvalidArgumentError, Option } from 'commander'
// Only what every command needs: `troupe --version` must not load the engine.
import { STRATEGIES, type Strategy } from '../runtime/plan/strategies.ts'
import { EXIT, reportError } from './exit-codes.ts'
import type { WorkerCommandOptions } from './worker-command.ts'
import { INIT_PLAN_FILE, INIT_TEMPLATES, SCHEMA_NAMES, type InitTemplate, type SchemaName } from './choices.ts'

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1, got "${value}"`)
    return n
  }
}

function port(value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--dashboard port must be an integer from 0 to 65535, got "${value}"`)
  return n
}

/** The package's version, from its package.json (two levels up, in src/ and in dist/). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }
  return pkg.version ?? 'unknown'
}

/** Builds the `troupe` command line. `exit` receives the exit code of the chosen command. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('troupe')
    .description('Run many agents in parallel: plans of tasks as XState actors on worker threads.')
    .version(packageVersion(), '-V, --version', 'print the version')
    // One hint, not the whole help: the help would push the error itself off screen.
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })

  program
    .command('run')
    .description('run a plan (JSON or YAML) with live progress on stderr')
    .argument('[plan]', 'plan file', INIT_PLAN_FILE)
    .option('--max-parallel <n>', 'tasks run at once at most', positiveInt('--max-parallel'))
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy').choices(STRATEGIES))
    .option('--config <file>', 'config file (default: ./troupe.config.json, else troupe.config.json beside the plan)')
    .option('--run-id <id>', 'name the run; an existing journal with this id resumes it')
    .option('--json', 'print the RunResult as one JSON document on stdout')
    .option('--quiet', 'print only the summary')
    .option('--no-progress', 'plain line-per-event output')
    .option('--dashboard [port]', 'serve a live web dashboard (default port 4700; 0 picks a free one)', port)
    .option('--host <host>', 'interface the dashboard binds (default: 127.0.0.1); beyond loopback, --allow-host is required')
    .option('--allow-host <name>', 'host name browsers use to reach the dashboard (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--keep-open', 'keep the dashboard open after the run ends, until Ctrl-C')
    .option('--backend <url>', 'where attempts run: local (default) or redis://HOST:PORT[/DB] (troupe worker processes)')
    .option('--keep-worktrees', 'keep worktree tasks\' worktrees and branches after the run, for inspection')
    .option('--no-cache', 'take no task output from the cache (cache: true tasks run, and their outputs are stored)')
    .action(async (plan: string, options: { maxParallel?: number; strategy?: Strategy; config?: string; runId?: string; json?: boolean; quiet?: boolean; progress?: boolean; dashboard?: boolean | number; host?: string; allowHost?: string[]; keepOpen?: boolean; backend?: string; keepWorktrees?: boolean; cache?: boolean }) => {
      const { runCommand } = await import('./run-command.ts')
      exit(await runCommand(plan, options))
    })

  program
    .command('report')
    .description('write a self-contained HTML report (timeline, figures) of a finished run from its journal')
    .argument('[runId]', 'id of a finished run')
    .option('--last', 'report the newest finished run')
    .option('-o, --out <file>', 'output file (default: <checkpoint.dir>/<runId>/report.html)')
    .option('--config <file>', 'config file, for checkpoint.dir (default: ./troupe.config.json if present)')
    .action(async (runId: string | undefined, options: { out?: string; config?: string; last?: boolean }) => {
      const { reportCommand } = await import('./report-command.ts')
      exit(reportCommand(runId, options))
    })

  program
    .command('runs')
    .description('list the runs in the journal directory, newest first: id, status, start time, tasks done/total')
    .option('--json', 'print the list as one JSON array on stdout')
    .option('--config <file>', 'config file, for checkpoint.dir (default: ./troupe.config.json if present)')
    .action(async (options: { json?: boolean; config?: string }) => {
      const { runsCommand } = await import('./runs-command.ts')
      exit(runsCommand(options))
    })

  program
    .command('logs')
    .description("print a run's stored attempt logs (every task, or one)")
    .argument('<runId>', 'id of a run')
    .argument('[taskId]', 'only this task')
    .option('--attempt <n>', 'only this attempt', positiveInt('--attempt'))
    .option('--scratchpad', "print the run's scratchpad notes (of every task, or of taskId) instead")
    .option('--messages', 'print the messages tasks sent each other with send_message (all, or from or to taskId) instead')
    .option('-f, --follow', 'keep printing new lines until the run ends')
    .option('--config <file>', 'config file, for checkpoint.dir (default: ./troupe.config.json if present)')
    .action(async (runId: string, taskId: string | undefined, options: { attempt?: number; config?: string; scratchpad?: boolean; messages?: boolean; follow?: boolean }) => {
      const { logsCommand } = await import('./logs-command.ts')
      exit(await logsCommand(runId, taskId, options))
    })

  program
    .command('cancel')
    .description('cancel a running run: signals the process that holds it, which cancels its tasks and keeps the journal for a resume')
    .argument('<runId>', 'id of a running run')
    .option('--config <file>', 'config file, for checkpoint.dir (default: ./troupe.config.json if present)')
    .action(async (runId: string, options: { config?: string }) => {
      const { cancelCommand } = await import('./cancel-command.ts')
      exit(await cancelCommand(runId, options))
    })

  program
    .command('approve')
    .description('approve a task awaiting approval (its approve gate), or reject it with --reject; works from any terminal')
    .argument('<runId>', 'id of the run')
    .argument('<taskId>', 'the task awaiting approval')
    .option('--reject <reason>', 'reject it instead: the task fails with ERR_APPROVAL_REJECTED and this reason')
    .option('--config <file>', 'config file, for checkpoint.dir (default: ./troupe.config.json if present)')
    .action(async (runId: string, taskId: string, options: { reject?: string; config?: string }) => {
      const { approveCommand } = await import('./approve-command.ts')
      exit(await approveCommand(runId, taskId, options))
    })

  program
    .command('plan')
    .description('validate and analyse a plan without running it: levels, critical path, estimated makespan, claim conflicts')
    .argument('[plan]', 'plan file', INIT_PLAN_FILE)
    .option('--max-parallel <n>', 'slots to estimate the makespan for', positiveInt('--max-parallel'))
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy').choices(STRATEGIES))
    .option('--config <file>', 'config file (default: ./troupe.config.json if present)')
    .option('--json', 'print the analysis as one JSON document on stdout')
    .action(async (plan: string, options: { maxParallel?: number; strategy?: Strategy; config?: string; json?: boolean }) => {
      const { planCommand } = await import('./plan-command.ts')
      exit(await planCommand(plan, options))
    })

  program
    .command('worker')
    .description('take attempts of any run from a Redis backend and run them here (module, command, CLI and LLM agents)')
    .option('--backend <url>', 'redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB] (default: $REDIS_URL)')
    .option('--plan <file>', 'run only the agents this plan defines (default: module agents of this checkout)')
    .option('--secret-file <file>', 'the shared secret jobs are signed with (default: $TROUPE_SECRET_FILE, $TROUPE_SECRET)')
    .option('--insecure', 'run unsigned jobs: anyone who can write to the Redis runs this worker\'s agents')
    .option('--concurrency <n>', 'attempts run at once on this worker (default: available cores)', positiveInt('--concurrency'))
    .option('--name <name>', 'this worker\'s name in results (default: <hostname>-<pid>)')
    .option('--config <file>', 'config file (default: ./troupe.config.json if present)')
    .action(async (options: WorkerCommandOptions) => {
      const { workerCommand } = await import('./worker-command.ts')
      exit(await workerCommand(options))
    })

  program
    .command('clean')
    .description('remove the worktrees and task branches that runs no longer running left in this repository (integration branches stay)')
    .option('--run-id <id>', 'only this run\'s leftovers')
    .option('--older-than <age>', 'only runs last active longer ago (7d, 12h, 30m), and remove their journals and logs too')
    .option('--config <file>', 'config file, for checkpoint.dir (default: ./troupe.config.json if present)')
    .action(async (options: { runId?: string; config?: string; olderThan?: string }) => {
      const { cleanCommand } = await import('./clean-command.ts')
      exit(await cleanCommand(options))
    })

  program
    .command('exec')
    .description('run shell commands in parallel without a plan file, each output line prefixed [N]; exit code: the first failure\'s')
    .argument('<commands...>', 'shell commands, one argument each (quote them)')
    .option('--max-parallel <n>', 'commands run at once at most', positiveInt('--max-parallel'))
    .option('--config <file>', 'config file (default: ./troupe.config.json if present)')
    .action(async (commands: string[], options: { maxParallel?: number; config?: string }) => {
      const { execCommand } = await import('./exec-command.ts')
      exit(await execCommand(commands, options))
    })

  program
    .command('init')
    .description('write a working plan and config for a common job: checks, review-fanout or feature-team')
    .addArgument(new Argument('[template]', 'what the plan does').choices(INIT_TEMPLATES).default('checks'))
    .option('--force', 'overwrite plan.yaml and troupe.config.json if they exist')
    .option('--dir <dir>', 'where to write them (default: the working directory)')
    .action(async (template: InitTemplate, options: { force?: boolean; dir?: string }) => {
      const { initCommand } = await import('./init-command.ts')
      exit(initCommand(template, options))
    })

  program
    .command('schema')
    .description('print the JSON Schema of a plan file or of troupe.config.json, for editors')
    .addArgument(new Argument('[file]', 'which schema').choices(SCHEMA_NAMES).default('plan'))
    .action(async (name: SchemaName) => {
      const { schemaCommand } = await import('./schema-command.ts')
      exit(schemaCommand(name))
    })

  program
    .command('bench')
    .description('validate parallel speedup: scenarios vs a sequential baseline; table on stdout, JSON report to a file')
    .option('--quick', 'fewer repetitions and smaller inputs (under a minute, for CI smoke runs)')
    .option('--json-out <file>', 'JSON report path (default: bench-results/bench-<timestamp>.json)')
    .option('--only <names>', 'comma-separated scenarios to run (default: all)', (value: string) => value.split(',').map((name) => name.trim()).filter(Boolean))
    .option('--data-dir <dir>', 'scheduling reference data (default: $TROUPE_DATA_DIR, else the vendored data/ folder of the repository)')
    .action(async (options: { quick?: boolean; jsonOut?: string; only?: string[]; dataDir?: string }) => {
      // Loaded on demand: `troupe run` should not pay for the bench's modules.
      const { benchCommand } = await import('./bench-command.ts')
      exit(await benchCommand(options))
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
