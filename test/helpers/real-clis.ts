import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * The real coding-agent CLIs the contract tests drive, at the versions `scripts/install-clis.sh`
 * installs (keep both in step). They live in a cache outside the package: they are not
 * runtime dependencies of troupe, and only the model behind them is scripted.
 */
export const REAL_CLIS = {
  'claude-code': { pkg: '@anthropic-ai/claude-code', version: '2.1.332', bin: 'claude' },
  codex: { pkg: '@openai/codex', version: '0.171.0', bin: 'codex' },
  gemini: { pkg: '@google/gemini-cli', version: '0.61.0', bin: 'gemini' },
} as const

export type RealCliKind = keyof typeof REAL_CLIS

/** The cache the CLIs are installed into (`TROUPE_CLI_CACHE`, default ~/.cache/troupe-clis). */
export function cliCacheDir(): string {
  return process.env.TROUPE_CLI_CACHE ?? join(homedir(), '.cache', 'troupe-clis')
}

/** The path of a real CLI's executable, or undefined when it is not installed. */
export function realCliPath(kind: RealCliKind): string | undefined {
  const cli = REAL_CLIS[kind]
  const path = join(cliCacheDir(), `${kind}-${cli.version}`, 'node_modules', '.bin', cli.bin)
  return existsSync(path) ? path : undefined
}

/**
 * Whether the real-CLI tests of `kind` run here. In CI they must (`.ci/run` installs the CLIs):
 * a missing CLI there fails the suite instead of skipping it. Locally, run
 * `bash scripts/install-clis.sh` once to enable them.
 */
export function hasRealCli(kind: RealCliKind): boolean {
  if (realCliPath(kind) !== undefined) return true
  if (process.env.CI) throw new Error(`The real ${kind} CLI is not installed in ${cliCacheDir()}: .ci/run runs scripts/install-clis.sh first`)
  return false
}
