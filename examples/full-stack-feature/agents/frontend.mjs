/**
 * Agent "frontend-engineer" — SIMULATED: no LLM is called and no file is written. Reads the
 * architect's design from `ctx.dependencies`, waits a simulated LLM latency, and returns the
 * components it "built" (under its claim, src/ui/**) and the API calls they make.
 */
import { maybeRateLimited, think } from '../lib/simulated-llm.mjs'

export default async function frontend(input, ctx) {
  const design = ctx.dependencies[input.designTask ?? 'arch']
  if (!design) throw new Error(`frontend needs the architect's design: make it depend on "${input.designTask ?? 'arch'}"`)
  await maybeRateLimited(input, ctx)
  const llm = await think(ctx, { steps: ['components', 'forms', 'state', 'api client'], latencyMs: input.latencyMs })
  const components = design.components.map((name) => ({ name, file: `src/ui/auth/${name}.tsx` }))
  await ctx.log(`built ${components.length} components`)
  return {
    components,
    // The calls the UI makes: qa checks each against what the backend implemented.
    apiCalls: design.endpoints.map((e) => `${e.method} ${e.path}`),
    files: components.map((c) => c.file),
    llm,
  }
}
