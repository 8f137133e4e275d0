/**
 * Agent "deployment-engineer" — SIMULATED: nothing is built or deployed and no network is
 * used. Waits a simulated pipeline latency, and refuses (fails the task) when qa found a
 * contract gap or security reported blocking findings, both read from `ctx.dependencies`.
 * Returns a made-up release (the URL uses the reserved .invalid domain).
 */
import { wait } from '../lib/simulated-llm.mjs'

export default async function deploy(input, ctx) {
  const { qa, security, docs } = ctx.dependencies
  if (!qa || !security) throw new Error('deploy needs the outputs of the "qa" and "security" tasks: make it depend on them')
  if (qa.contract.missing.length > 0 || security.blocking > 0) {
    throw new Error(`refusing to deploy: ${qa.contract.missing.length} contract gaps, ${security.blocking} blocking security findings`)
  }
  await wait(ctx, { steps: ['build', 'migrate', 'roll out'], latencyMs: input.latencyMs })
  const release = {
    environment: input.environment ?? 'staging',
    url: `https://${input.environment ?? 'staging'}.example.invalid/auth`,
    tests: qa.tests.length,
    docs: docs?.pages ?? [],
  }
  await ctx.log(`released to ${release.environment} (${release.tests} tests green, ${security.findings.length} findings noted)`)
  return release
}
