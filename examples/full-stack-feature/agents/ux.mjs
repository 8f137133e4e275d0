/**
 * Agent "ux-designer" — SIMULATED: no LLM is called and no file is written. Reads the
 * architect's design from `ctx.dependencies`, waits a simulated LLM latency, and returns the
 * screens and accessibility requirements it "designed" (under its claim, src/ui/styles/**,
 * which overlaps the frontend's src/ui/**: troupe never runs the two at once).
 */
import { think } from '../lib/simulated-llm.mjs'

export default async function ux(input, ctx) {
  const design = ctx.dependencies[input.designTask ?? 'arch']
  if (!design) throw new Error(`ux needs the architect's design: make it depend on "${input.designTask ?? 'arch'}"`)
  const llm = await think(ctx, { steps: ['user flows', 'wireframes', 'style tokens'], latencyMs: input.latencyMs })
  await ctx.log(`designed ${design.components.length} screens`)
  return {
    screens: design.components.map((name) => ({ component: name, states: ['idle', 'submitting', 'error'] })),
    accessibility: ['labels on every field', 'errors announced to screen readers', 'visible focus ring'],
    styles: ['src/ui/styles/auth.css'],
    llm,
  }
}
