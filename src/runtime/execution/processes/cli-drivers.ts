import type { CliAgentSpec, CliKind } from '../../plan/agent-spec.ts'
import { claudeCode } from './claude-code.ts'
import { CliDriver, type CliParser } from './cli-driver.ts'
import { codex } from './codex.ts'
import { gemini } from './gemini.ts'
import type { DriverContext } from './process-driver.ts'

const PARSERS: Readonly<Record<CliKind, CliParser>> = { 'claude-code': claudeCode, codex, gemini }

/** The driver for one attempt of a coding-agent CLI. */
export function createCliDriver(spec: CliAgentSpec, context: DriverContext): CliDriver {
  return new CliDriver(spec, context, PARSERS[spec.kind])
}
