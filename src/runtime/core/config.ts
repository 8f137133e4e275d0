import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import * as Schema from 'effect/Schema'
import { TroupeError, describeValue } from './errors.ts'
import { valueOrThrow } from './schema-errors.ts'

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Percent = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 100 }))
const opt = Schema.optionalKey

/** The shape of `troupe.config.json`. Every key is optional; defaults live in {@link resolveConfig}. */
/** `local`, or a Redis URL: `redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]` (`rediss` = TLS). */
export const BACKEND_PATTERN = /^(local|rediss?:\/\/([^\s/@]+@)?[^/\s:@]+(:\d{1,5})?(\/\d{1,2})?)$/
const BACKEND_EXPECTED = '"local" or redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]'

export const ConfigSchema = Schema.Struct({
  /** The file's editor schema (`troupe schema config`); ignored. */
  $schema: opt(Schema.String),
  maxParallel: opt(PositiveInt),
  maxQueuedTasks: opt(PositiveInt),
  maxAddedTasks: opt(PositiveInt),
  timeoutMs: opt(PositiveInt),
  cancelGraceMs: opt(NonNegativeInt),
  pool: opt(
    Schema.Struct({
      minThreads: opt(NonNegativeInt),
      maxThreads: opt(PositiveInt),
      concurrentTasksPerWorker: opt(PositiveInt),
      idleTimeoutMs: opt(NonNegativeInt),
    }),
  ),
  retry: opt(
    Schema.Struct({
      maxRetries: opt(NonNegativeInt),
      delayMs: opt(NonNegativeInt),
      backoff: opt(Schema.Literals(['fixed', 'exponential'])),
      maxDelayMs: opt(NonNegativeInt),
      jitter: opt(Schema.Boolean),
      rateLimitRetries: opt(NonNegativeInt),
    }),
  ),
  governor: opt(
    Schema.Struct({
      enabled: opt(Schema.Boolean),
      mode: opt(Schema.Literals(['threshold', 'adaptive'])),
      sampleIntervalMs: opt(Schema.Int.check(Schema.isGreaterThanOrEqualTo(10))),
      cpu: opt(Schema.Struct({ throttlePercent: opt(Percent), resumePercent: opt(Percent), targetPercent: opt(Percent) })),
      memory: opt(
        Schema.Struct({
          throttlePercent: opt(Percent),
          resumePercent: opt(Percent),
          perAgentMb: opt(Schema.NullOr(PositiveInt)),
          perProcessMb: opt(Schema.NullOr(PositiveInt)),
        }),
      ),
    }),
  ),
  limits: opt(
    Schema.Record(
      Schema.String,
      Schema.Struct({ maxConcurrent: opt(PositiveInt), perSecond: opt(Schema.Finite.check(Schema.isGreaterThan(0))) }),
    ),
  ),
  checkpoint: opt(
    Schema.Struct({ enabled: opt(Schema.Boolean), dir: opt(Schema.String), rollbackOnFailure: opt(Schema.Boolean) }),
  ),
  /** Task outputs kept across runs (`cache: true` tasks): at most `maxBytes` in `<checkpoint.dir>/cache`. */
  cache: opt(Schema.Struct({ maxBytes: opt(PositiveInt) })),
  supervision: opt(Schema.Struct({ maxRestarts: opt(NonNegativeInt), periodMs: opt(PositiveInt) })),
  budget: opt(
    Schema.Struct({
      maxCostUsd: opt(Schema.NullOr(Schema.Finite.check(Schema.isGreaterThan(0)))),
      onExceeded: opt(Schema.Literals(['pause', 'fail'])),
    }),
  ),
  backend: opt(Schema.String.check(Schema.isPattern(BACKEND_PATTERN, { expected: BACKEND_EXPECTED }))),
  models: opt(
    Schema.Record(
      Schema.String,
      Schema.Union([
        Schema.String,
        Schema.Struct({
          model: Schema.String,
          inputUsdPerMTok: opt(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))),
          outputUsdPerMTok: opt(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))),
          cachedInputUsdPerMTok: opt(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))),
        }),
      ]),
    ),
  ),
}).annotate({ title: 'config' })

/** Config as a user writes it (`troupe.config.json` or `createRuntime({ config })`). */
export type TroupeConfig = typeof ConfigSchema.Type

export interface LimitConfig {
  readonly maxConcurrent: number | undefined
  readonly perSecond: number | undefined
}

/** Config with every default filled in. Frozen; the one source of truth for a runtime. */
export interface ResolvedConfig {
  readonly maxParallel: number
  readonly maxQueuedTasks: number
  /** Tasks one run may add while it runs (`ctx.spawn`, `add_tasks`, `Run.addTasks`); past it ERR_QUEUE_FULL. @default 10000 */
  readonly maxAddedTasks: number
  readonly timeoutMs: number
  readonly cancelGraceMs: number
  readonly pool: {
    readonly minThreads: number
    readonly maxThreads: number
    readonly concurrentTasksPerWorker: number
    readonly idleTimeoutMs: number
    /**
     * Neither `minThreads` nor `maxThreads` was given: the runtime sizes the pool from its runs
     * (the threads their module agents can use at once, bounded); `maxThreads` is then unused.
     */
    readonly autoSize: boolean
  }
  readonly retry: {
    readonly maxRetries: number
    readonly delayMs: number
    readonly backoff: 'fixed' | 'exponential'
    readonly maxDelayMs: number
    readonly jitter: boolean
    /** Times an attempt may be rate-limited (and re-queued, uncounted) before the task fails with ERR_RATE_LIMITED. */
    readonly rateLimitRetries: number
  }
  readonly governor: {
    readonly enabled: boolean
    readonly mode: 'threshold' | 'adaptive'
    readonly sampleIntervalMs: number
    readonly cpu: { readonly throttlePercent: number; readonly resumePercent: number; readonly targetPercent: number }
    /**
     * `perAgentMb`: a worker thread's JS heap limit (threads share one process, so their RSS is
     * not theirs alone). `perProcessMb`: the resident memory of a process agent's whole process
     * group; over it the group is killed (ERR_WORKER_OOM). `null`: no cap.
     */
    readonly memory: { readonly throttlePercent: number; readonly resumePercent: number; readonly perAgentMb: number | null; readonly perProcessMb: number | null }
  }
  readonly limits: Readonly<Record<string, LimitConfig>>
  readonly checkpoint: { readonly enabled: boolean; readonly dir: string; readonly rollbackOnFailure: boolean }
  /**
   * The task cache in `<checkpoint.dir>/cache`: least recently used entries go past `maxBytes`.
   * @default { maxBytes: 268435456 } (256 MiB)
   */
  readonly cache: { readonly maxBytes: number }
  /** Worker crashes (exit, out of memory, uncaught exception) a run tolerates per period before it fails fast. */
  readonly supervision: { readonly maxRestarts: number; readonly periodMs: number }
  readonly budget: { readonly maxCostUsd: number | null; readonly onExceeded: 'pause' | 'fail' }
  /** Where attempts run: `local` (the embedded pool) or `redis://HOST:PORT[/DB]` (BullMQ workers). */
  readonly backend: string
  /** Agent name → model name (`config.models`, the string form or the object's `model`). */
  readonly models: Readonly<Record<string, string>>
  /**
   * Prices for turning tokens into cost, by agent name and by model name (from the object
   * form of `config.models`). Used when an agent reports tokens but no cost.
   */
  readonly prices: Readonly<Record<string, ModelPrice>>
}

export const CONFIG_FILE = 'troupe.config.json'

/** `cache.maxBytes` by default: 256 MiB. */
export const DEFAULT_CACHE_MAX_BYTES = 256 * 1024 * 1024

const decode = Schema.decodeUnknownExit(ConfigSchema, { onExcessProperty: 'error', errors: 'all' })
/** Configs made by {@link resolveConfig}: only these skip resolution (a frozen partial config is not one). */
const resolvedConfigs = new WeakSet<object>()

/** Whether `value` was made by {@link resolveConfig} (and so is complete and frozen). */
export function isResolvedConfig(value: unknown): value is ResolvedConfig {
  return typeof value === 'object' && value !== null && resolvedConfigs.has(value)
}

/**
 * Decodes and resolves config. Throws ERR_CONFIG_INVALID naming the key, the value
 * received and what is allowed. `source` names where the config came from, for messages.
 */
export function resolveConfig(input: unknown = {}, source = 'config'): ResolvedConfig {
  const decoded = valueOrThrow(decode(input), input, 'ERR_CONFIG_INVALID', `Invalid ${source}`)
  const config = freeze(withDefaults(decoded, source))
  resolvedConfigs.add(config)
  return config
}

/**
 * Finds and resolves config for the CLI: `--config FILE` if given, else `troupe.config.json`
 * in `cwd` if present, else defaults.
 */
export function loadConfig(options: { file?: string | undefined; cwd?: string | undefined } = {}): ResolvedConfig {
  const cwd = options.cwd ?? process.cwd()
  const file = options.file === undefined ? resolve(cwd, CONFIG_FILE) : resolve(cwd, options.file)
  if (options.file === undefined && !existsSync(file)) return resolveConfig({})
  let data: unknown
  try {
    data = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new TroupeError('ERR_CONFIG_INVALID', `Cannot read config file ${file}: ${(error as Error).message}`, { cause: error })
  }
  return resolveConfig(data, `config file ${file}`)
}

function withDefaults(c: TroupeConfig, source: string): ResolvedConfig {
  const cores = availableParallelism()
  // With the governor on, admission by fit holds CPU-bound agents to the cores, so the
  // default bound is sized for agents that wait (LLM calls, network): many at once.
  // Without the governor nothing else bounds CPU, so the default stays the core count.
  const maxParallel = c.maxParallel ?? (c.governor?.enabled === false ? cores : Math.max(64, cores * 4))
  // Threads are cheap for I/O-bound agents (LLM calls); idle ones above minThreads are reaped.
  const maxThreads = c.pool?.maxThreads ?? Math.max(16, cores, maxParallel)
  const minThreads = c.pool?.minThreads ?? Math.min(cores, maxThreads)
  if (minThreads > maxThreads) {
    throw new TroupeError(
      'ERR_CONFIG_INVALID',
      `Invalid ${source}: \`pool.minThreads\` is ${describeValue(minThreads)}: expected a value <= pool.maxThreads (${maxThreads})`,
    )
  }
  const cpu = {
    throttlePercent: c.governor?.cpu?.throttlePercent ?? 90,
    resumePercent: c.governor?.cpu?.resumePercent ?? 75,
    targetPercent: c.governor?.cpu?.targetPercent ?? 80,
  }
  const memory = {
    throttlePercent: c.governor?.memory?.throttlePercent ?? 90,
    resumePercent: c.governor?.memory?.resumePercent ?? 80,
    perAgentMb: c.governor?.memory?.perAgentMb === undefined ? 1024 : c.governor.memory.perAgentMb,
    // No default cap: builds and test runners legitimately hold gigabytes across a process tree.
    perProcessMb: c.governor?.memory?.perProcessMb ?? null,
  }
  for (const [name, t] of [['cpu', cpu], ['memory', memory]] as const) {
    if (t.resumePercent > t.throttlePercent) {
      throw new TroupeError(
        'ERR_CONFIG_INVALID',
        `Invalid ${source}: \`governor.${name}.resumePercent\` is ${describeValue(t.resumePercent)}: expected a value <= governor.${name}.throttlePercent (${t.throttlePercent})`,
      )
    }
  }
  // Null prototype: a limit may be named `__proto__` or `toString`.
  const limits: Record<string, LimitConfig> = Object.create(null)
  for (const [name, limit] of Object.entries(c.limits ?? {})) {
    limits[name] = { maxConcurrent: limit.maxConcurrent, perSecond: limit.perSecond }
  }
  return {
    maxParallel,
    maxQueuedTasks: c.maxQueuedTasks ?? 1_000_000,
    maxAddedTasks: c.maxAddedTasks ?? 10_000,
    timeoutMs: c.timeoutMs ?? 300_000,
    cancelGraceMs: c.cancelGraceMs ?? 1_000,
    pool: {
      minThreads,
      maxThreads,
      concurrentTasksPerWorker: c.pool?.concurrentTasksPerWorker ?? 1,
      idleTimeoutMs: c.pool?.idleTimeoutMs ?? 30_000,
      autoSize: c.pool?.minThreads === undefined && c.pool?.maxThreads === undefined,
    },
    retry: {
      maxRetries: c.retry?.maxRetries ?? 0,
      delayMs: c.retry?.delayMs ?? 1_000,
      backoff: c.retry?.backoff ?? 'exponential',
      maxDelayMs: c.retry?.maxDelayMs ?? 30_000,
      jitter: c.retry?.jitter ?? false,
      rateLimitRetries: c.retry?.rateLimitRetries ?? 5,
    },
    governor: {
      enabled: c.governor?.enabled ?? true,
      mode: c.governor?.mode ?? 'threshold',
      sampleIntervalMs: c.governor?.sampleIntervalMs ?? 500,
      cpu,
      memory,
    },
    limits,
    checkpoint: {
      enabled: c.checkpoint?.enabled ?? true,
      dir: c.checkpoint?.dir ?? '.troupe',
      rollbackOnFailure: c.checkpoint?.rollbackOnFailure ?? false,
    },
    cache: { maxBytes: c.cache?.maxBytes ?? DEFAULT_CACHE_MAX_BYTES },
    supervision: { maxRestarts: c.supervision?.maxRestarts ?? 10, periodMs: c.supervision?.periodMs ?? 10_000 },
    budget: { maxCostUsd: c.budget?.maxCostUsd ?? null, onExceeded: c.budget?.onExceeded ?? 'pause' },
    backend: c.backend ?? 'local',
    ...resolveModels(c.models ?? {}),
  }
}

/** USD per million tokens, in and out; cached input (a prompt-cache read) has its own price. */
export interface ModelPrice {
  readonly inputUsdPerMTok: number
  readonly outputUsdPerMTok: number
  /** @default inputUsdPerMTok */
  readonly cachedInputUsdPerMTok?: number
}

function resolveModels(models: NonNullable<TroupeConfig['models']>): { models: Record<string, string>; prices: Record<string, ModelPrice> } {
  const names: Record<string, string> = Object.create(null)
  const prices: Record<string, ModelPrice> = Object.create(null)
  for (const [agent, entry] of Object.entries(models)) {
    if (typeof entry === 'string') {
      names[agent] = entry
      continue
    }
    names[agent] = entry.model
    if (entry.inputUsdPerMTok === undefined && entry.outputUsdPerMTok === undefined && entry.cachedInputUsdPerMTok === undefined) continue
    const price: ModelPrice = {
      inputUsdPerMTok: entry.inputUsdPerMTok ?? 0,
      outputUsdPerMTok: entry.outputUsdPerMTok ?? 0,
      ...(entry.cachedInputUsdPerMTok === undefined ? {} : { cachedInputUsdPerMTok: entry.cachedInputUsdPerMTok }),
    }
    prices[agent] = price
    prices[entry.model] = price
  }
  return { models: names, prices }
}

function freeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) freeze(inner)
    Object.freeze(value)
  }
  return value
}
