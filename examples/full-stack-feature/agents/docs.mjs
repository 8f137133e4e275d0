/**
 * Agent "technical-writer" — SIMULATED: no LLM is called and no file is written. Reads the
 * architect's design from `ctx.dependencies`, waits a simulated LLM latency, and returns the
 * API reference and user-guide pages it "wrote" (under its claim, docs/**).
 */
import { think } from '../lib/simulated-llm.mjs'

export default async function docs(input, ctx) {
  const design = ctx.dependencies[input.designTask ?? 'arch']
  if (!design) throw new Error(`docs needs the architect's design: make it depend on "${input.designTask ?? 'arch'}"`)
  const llm = await think(ctx, { steps: ['outline', 'api reference', 'user guide'], latencyMs: input.latencyMs })
  const pages = [...design.endpoints.map((e) => `docs/api/${e.path.split('/').pop()}.md`), 'docs/guide/signing-in.md']
  await ctx.log(`wrote ${pages.length} pages`)
  return { pages, llm }
}
