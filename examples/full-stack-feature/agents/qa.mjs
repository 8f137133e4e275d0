/**
 * Agent "qa-engineer" — SIMULATED: no LLM is called and no test is run. Its check is real,
 * though, on the simulated outputs it reads from `ctx.dependencies`: every API call the
 * frontend makes must be an endpoint the backend implemented, or the task fails.
 * Returns the test cases it "wrote" (under its claim, test/**).
 */
import { think } from '../lib/simulated-llm.mjs'

export default async function qa(input, ctx) {
  const { backend, frontend, ux } = ctx.dependencies
  if (!backend || !frontend) throw new Error('qa needs the outputs of the "backend" and "frontend" tasks: make it depend on them')
  const implemented = new Set(backend.endpoints.map((e) => `${e.method} ${e.path}`))
  const missing = frontend.apiCalls.filter((call) => !implemented.has(call))
  if (missing.length > 0) {
    throw new Error(`contract mismatch: the frontend calls ${missing.join(', ')}, which the backend does not implement`)
  }
  const llm = await think(ctx, { steps: ['unit tests', 'integration tests', 'e2e tests'], latencyMs: input.latencyMs })
  const tests = [
    ...backend.endpoints.map((e) => `integration: ${e.method} ${e.path}`),
    ...frontend.components.map((c) => `component: ${c.name}`),
    ...(ux?.accessibility ?? []).map((rule) => `a11y: ${rule}`),
  ]
  await ctx.log(`contract check passed (${implemented.size} endpoints); wrote ${tests.length} tests`)
  return { contract: { endpoints: implemented.size, calls: frontend.apiCalls.length, missing }, tests, llm }
}
