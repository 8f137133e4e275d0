import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach } from 'vitest'
import type { TroupeConfig } from '../../src/runtime/core/config.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { claudeEnv, startAnthropicServer, type AnthropicServer, type Script } from './model-servers/anthropic.ts'
import { realCliPath } from './real-clis.ts'

/** What one test of a real Claude Code suite started: closed after the test. */
export interface RealClaudeSession {
  readonly runtime: Runtime
  readonly server: AnthropicServer
  /** The environment that points the real `claude` at `server`, with a throwaway HOME. */
  readonly env: Record<string, string>
  readonly home: string
}

export interface RealClaudeSuite {
  /** The REAL `claude` executable (scripts/install-clis.sh); undefined when it is not installed (the suite is skipped). */
  readonly claude: string | undefined
  /** A scratch directory for the file, removed after it. */
  readonly root: string
  /** Starts the scripted Messages API and a runtime with `config`; both are closed after the test. */
  start(script: Script, config: TroupeConfig): Promise<RealClaudeSession>
}

/**
 * The set-up of a test file that drives the real Claude Code CLI against a scripted Messages
 * API (ANTHROPIC_BASE_URL), with a throwaway HOME / CLAUDE_CONFIG_DIR per session so nothing
 * of the machine's is read. Registers its own afterEach / afterAll.
 */
export function realClaudeSuite(prefix: string): RealClaudeSuite {
  const root = mkdtempSync(join(tmpdir(), prefix))
  let runtime: Runtime | undefined
  let server: AnthropicServer | undefined
  afterEach(async () => {
    await runtime?.close({ force: true })
    await server?.close()
    runtime = undefined
    server = undefined
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))
  return {
    claude: realCliPath('claude-code'),
    root,
    async start(script, config) {
      server = await startAnthropicServer(script)
      runtime = createRuntime({ config })
      const home = mkdtempSync(join(root, 'home-'))
      return { runtime, server, env: claudeEnv(home, server.url), home }
    },
  }
}
