/**
 * Agent "security-engineer" — SIMULATED: no LLM is called and no code is scanned. Reads the
 * backend and frontend outputs from `ctx.dependencies`, waits a simulated LLM latency, and
 * returns audit findings derived from them (none blocking when the backend hashes passwords).
 * Read-only: it claims nothing, so it may run beside any other task.
 */
import { think } from '../lib/simulated-llm.mjs'

export default async function security(input, ctx) {
  const { backend, frontend } = ctx.dependencies
  if (!backend || !frontend) throw new Error('security needs the outputs of the "backend" and "frontend" tasks: make it depend on them')
  const llm = await think(ctx, { steps: ['threat model', 'review handlers', 'review client'], latencyMs: input.latencyMs })
  const findings = [
    { severity: backend.passwordHashing ? 'info' : 'high', note: `password hashing: ${backend.passwordHashing ?? 'missing'}` },
    { severity: 'medium', note: 'add rate limiting to POST /api/auth/login' },
    { severity: 'low', note: `${frontend.components.length} components render server errors verbatim: map them to generic messages` },
  ]
  const blocking = findings.filter((f) => f.severity === 'high').length
  await ctx.log(`audit done: ${findings.length} findings, ${blocking} blocking`)
  return { findings, blocking, llm }
}
