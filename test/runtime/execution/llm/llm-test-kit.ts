import type { UsageReport } from '../../../../src/runtime/admission/usage.ts'
import type { AttemptListener, AttemptRequest } from '../../../../src/runtime/execution/executor.ts'
import type { LlmAgentSpec, LlmKind } from '../../../../src/runtime/plan/agent-spec.ts'

/** A recognisable fake key: tests assert it never leaks. */
export const SECRET = 'sk-standin-SECRET-4f1c9e'

export function llmAgent(kind: LlmKind, baseUrl: string, extra: Partial<LlmAgentSpec> = {}): LlmAgentSpec {
  return {
    kind,
    name: 'writer',
    model: kind === 'openai' ? 'gpt-standin' : 'claude-standin',
    baseUrl,
    apiKeyEnv: 'STANDIN_KEY',
    system: undefined,
    output: 'text',
    maxTokens: undefined,
    temperature: undefined,
    ...extra,
  }
}

export function attemptRequest(agent: LlmAgentSpec, input: unknown = { prompt: 'Say hello' }, extra: Partial<AttemptRequest> = {}): AttemptRequest {
  return {
    runId: 'r1',
    taskId: 't1',
    attempt: 1,
    agent,
    input,
    dependencies: {},
    model: undefined,
    timeoutMs: 30_000,
    graceMs: 1000,
    baseDir: '/',
    runDir: undefined,
    workspace: undefined,
    port: undefined,
    ...extra,
  }
}

/** Records what an attempt reported. */
export function recordingListener() {
  const seen = { progress: [] as [number, string | undefined][], logs: [] as string[], usage: [] as UsageReport[] }
  const listener: AttemptListener = {
    onProgress: (fraction, message) => seen.progress.push([fraction, message]),
    onLog: (message) => seen.logs.push(message),
    onAcquire: () => Promise.reject(new Error('not used')),
    onUsage: (report) => seen.usage.push(report),
    onClaim: () => ({ granted: true }),
    onRelease: () => {},
    onSpawn: () => Promise.reject(new Error('not used')),
  }
  return { listener, seen }
}

export const env = (name: string) => (name === 'STANDIN_KEY' ? SECRET : undefined)
