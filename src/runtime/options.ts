import type * as Exit from 'effect/Exit'
import * as Schema from 'effect/Schema'
import type { ResourceProbe } from './governor/governor.ts'
import type { Strategy } from './plan/plan.ts'
import type { Clock } from './core/clock.ts'
import type { ResolvedConfig, TroupeConfig } from './core/config.ts'
import { MAX_PARALLEL, STRATEGIES } from './plan/plan-schema.ts'
import { closest } from './core/did-you-mean.ts'
import { BACKEND_PATTERN, ConfigSchema } from './core/config.ts'
import { valueOrThrow, formatKeyPath, type IssueFormatOptions } from './core/schema-errors.ts'
import { TroupeError, describeValue } from './core/errors.ts'
import { BACKEND_SHAPE, backendProblem, type Backend } from './execution/backend.ts'

/**
 * Validation of the options of the public entry points (`createRuntime`, `runtime.run`,
 * `runPlan`), so that a misspelt or misplaced option fails loudly with ERR_ARGUMENT_INVALID
 * instead of being ignored. A key given as `undefined` counts as not given.
 *
 * A new option of `RuntimeOptions` or `RunOptions` must be added here too.
 */

/** Options of `createRuntime`. */
export interface RuntimeOptions {
  /** Config object (the shape of `troupe.config.json`); validated, defaults filled in. */
  readonly config?: TroupeConfig | ResolvedConfig
  /** Clock for timestamps, timeouts and retry delays. @default the system clock */
  readonly clock?: Clock
  /**
   * Where the governor reads CPU and memory load.
   * @default this machine, sampled with systeminformation in a dedicated thread
   */
  readonly probe?: ResourceProbe
  /**
   * Where attempts run: `local` (this process's pool), `redis://HOST:PORT[/DB]` (BullMQ
   * workers started with `troupe worker`), or a {@link Backend} object of your own (its
   * executor, the gates it needs, close). Overrides `config.backend`.
   */
  readonly backend?: string | Backend
}

export interface RunOptions {
  /** Names the run. A journal with this id resumes it. @default a generated id */
  readonly runId?: string
  /** Aborting it cancels the run. */
  readonly signal?: AbortSignal
  /** Overrides the plan's and the config's maxParallel. */
  readonly maxParallel?: number
  /** Overrides the plan's strategy. */
  readonly strategy?: Strategy
  /** Directory relative agent paths of a plan object resolve against. @default process.cwd() */
  readonly baseDir?: string
  /** Keep worktree tasks' worktrees and branches after the run, for inspection (`--keep-worktrees`). @default false */
  readonly keepWorktrees?: boolean
  /**
   * `false`: no task output is taken from the cache (`--no-cache`); outputs of `cache: true`
   * tasks are still stored. @default true
   */
  readonly cache?: boolean
}

export type RuntimeStatus = 'open' | 'closing' | 'closed'

export interface CloseOptions {
  /** Cancel running work instead of waiting for it. @default false */
  readonly force?: boolean
}


const opt = Schema.optional

function expecting<S extends Schema.Top>(schema: S, expected: string): S['Rebuild'] {
  return schema.annotate({ identifier: expected })
}

/** An object whose `methods` are functions (a duck-typed interface such as `Clock`). */
function withMethods(expected: string, methods: readonly string[]) {
  return expecting(
    Schema.Unknown.check(
      Schema.makeFilter(
        (value: unknown) => typeof value === 'object' && value !== null && methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function'),
        { expected },
      ),
    ),
    expected,
  )
}

/** What `backend` may be, as messages say it. */
const BACKEND_EXPECTED = `"local", redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB] or ${BACKEND_SHAPE}`

const runtimeFields = {
  config: opt(expecting(Schema.Record(Schema.String, Schema.Unknown), 'a config object (the shape of troupe.config.json)')),
  clock: opt(withMethods('a Clock: an object with now(), setTimeout() and clearTimeout()', ['now', 'setTimeout', 'clearTimeout'])),
  probe: opt(withMethods('a ResourceProbe: an object with sample()', ['sample'])),
  // A Backend object is checked by checkOptions before this schema (which knows strings only) sees the options.
  backend: opt(expecting(Schema.String.check(Schema.isPattern(BACKEND_PATTERN)), BACKEND_EXPECTED)),
}

const runFields = {
  runId: opt(expecting(Schema.String, 'a string')),
  signal: opt(expecting(Schema.instanceOf(AbortSignal), 'an AbortSignal')),
  maxParallel: opt(
    expecting(
      Schema.Number.check(Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= 1 && n <= MAX_PARALLEL, { expected: `an integer from 1 to ${MAX_PARALLEL}` })),
      `an integer from 1 to ${MAX_PARALLEL}`,
    ),
  ),
  strategy: opt(expecting(Schema.Literals(STRATEGIES), `one of ${STRATEGIES.map((s) => `"${s}"`).join(', ')}`)),
  baseDir: opt(expecting(Schema.String, 'a directory path')),
  keepWorktrees: opt(expecting(Schema.Boolean, 'a boolean')),
  cache: opt(expecting(Schema.Boolean, 'a boolean')),
}

/** The keys `createRuntime` accepts; `runPlan` hands exactly these to the runtime it makes. */
export const RUNTIME_OPTION_KEYS: readonly string[] = Object.keys(runtimeFields)
/** The keys `runtime.run` accepts. */
export const RUN_OPTION_KEYS: readonly string[] = Object.keys(runFields)

/** The entries of `options` whose key is one of `keys` (for `runPlan`, which makes a runtime and a run). */
export function pickOptions<T extends object>(options: T, keys: readonly string[]): Partial<T> {
  const picked: Partial<T> = {}
  for (const key of keys) if (Object.hasOwn(options, key)) (picked as Record<string, unknown>)[key] = (options as Record<string, unknown>)[key]
  return picked
}

const schemas = {
  createRuntime: Schema.Struct(runtimeFields).annotate({ title: 'createRuntime option', identifier: 'an object of runtime options { config?, clock?, probe?, backend? }' }),
  run: Schema.Struct(runFields).annotate({ title: 'run option', identifier: 'an object of run options { runId?, signal?, maxParallel?, strategy?, baseDir?, keepWorktrees?, cache? }' }),
  runPlan: Schema.Struct({ ...runtimeFields, ...runFields }).annotate({ title: 'runPlan option', identifier: 'an object of runtime and run options' }),
}
const decoders: Record<keyof typeof schemas, (input: unknown) => Exit.Exit<unknown, unknown>> = {
  createRuntime: Schema.decodeUnknownExit(schemas.createRuntime, { onExcessProperty: 'error', errors: 'all' }),
  run: Schema.decodeUnknownExit(schemas.run, { onExcessProperty: 'error', errors: 'all' }),
  runPlan: Schema.decodeUnknownExit(schemas.runPlan, { onExcessProperty: 'error', errors: 'all' }),
}

const CONFIG_KEYS = Object.keys(ConfigSchema.fields)

/**
 * Throws ERR_ARGUMENT_INVALID naming the option, the value received and what is allowed,
 * when `options` (as given to `entry`) is not an options object or has a key `entry` does
 * not know. `undefined` is allowed (no options).
 */
export function checkOptions(entry: keyof typeof schemas, options: unknown): void {
  if (options === undefined) return
  const backend = typeof options === 'object' && options !== null ? (options as { backend?: unknown }).backend : undefined
  if (typeof backend === 'object' && backend !== null) {
    const problem = backendProblem(backend)
    if (problem !== undefined) {
      const received = `\`options.backend\` is ${describeValue(backend)}`
      throw new TroupeError('ERR_ARGUMENT_INVALID', `Invalid ${entry}() options: ${received}: expected ${BACKEND_EXPECTED} (${problem})`)
    }
    // The other options are checked as usual; an option given as undefined counts as not given.
    options = { ...options, backend: undefined }
  }
  const own = Object.keys(schemas[entry].fields)
  const format: IssueFormatOptions = {
    formatPath: (path) => (path.length === 0 ? 'options' : `options.${formatKeyPath(path)}`),
    // A config key given as an option (`createRuntime({ maxParallel: 4 })`) belongs in `config`.
    hintKey: (key, path) => {
      if (path.length > 0 || closest(key, own) !== undefined) return undefined
      const configKey = closest(key, CONFIG_KEYS)
      return configKey === undefined ? undefined : `did you mean \`config.${configKey}\`? ${configKey} is a config key: createRuntime({ config: { ${configKey} } })`
    },
  }
  valueOrThrow(decoders[entry](options), options, 'ERR_ARGUMENT_INVALID', `Invalid ${entry}() options`, format)
}
