/**
 * Agent "backend-engineer" — SIMULATED: no LLM is called and no file is written. Reads the
 * architect's design from `ctx.dependencies`, waits a simulated LLM latency, and returns the
 * endpoints it "implemented" with the files it would have written (under its claim, src/api/**).
 * With `input.simulateRateLimitOnAttempts` it fails those attempts with a simulated HTTP 429,
 * which the plan's `retries` absorb.
 */
import { maybeRateLimited, think } from '../lib/simulated-llm.mjs'

export default async function backend(input, ctx) {
  const design = ctx.dependencies[input.designTask ?? 'arch']
  if (!design) throw new Error(`backend needs the architect's design: make it depend on "${input.designTask ?? 'arch'}"`)
  await maybeRateLimited(input, ctx)
  const llm = await think(ctx, { steps: ['data model', 'migrations', 'endpoints', 'middleware', 'unit tests'], latencyMs: input.latencyMs })
  const endpoints = design.endpoints.map((e) => ({ ...e, handler: `src/api/auth/${e.path.split('/').pop()}.ts` }))
  await ctx.log(`implemented ${endpoints.length} endpoints (attempt ${ctx.attempt})`)
  return {
    endpoints,
    files: [...endpoints.map((e) => e.handler), 'src/api/auth/middleware.ts', 'src/api/db/migrations/001_users_sessions.sql'],
    passwordHashing: 'argon2id',
    llm,
  }
}
