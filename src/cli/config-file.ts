import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { CONFIG_FILE } from '../runtime/core/config.ts'

/**
 * The config file a command uses, or undefined for none (defaults). Precedence:
 * `--config FILE` (relative to the working directory), then `troupe.config.json` in the
 * working directory, then `troupe.config.json` beside the plan — so
 * `troupe run examples/x/plan.yaml` finds the example's own config.
 */
export function findConfigFile(options: {
  readonly config?: string | undefined
  readonly planFile?: string | undefined
  readonly cwd?: string
}): string | undefined {
  const cwd = options.cwd ?? process.cwd()
  if (options.config !== undefined) return resolve(cwd, options.config)
  const inCwd = resolve(cwd, CONFIG_FILE)
  if (existsSync(inCwd)) return inCwd
  if (options.planFile === undefined) return undefined
  const besidePlan = join(dirname(resolve(cwd, options.planFile)), CONFIG_FILE)
  return existsSync(besidePlan) ? besidePlan : undefined
}
