/**
 * Agent "software-architect" — SIMULATED: no LLM is called. Waits a simulated LLM latency,
 * then returns a fixed design for `input.feature`: the API endpoints, the UI components and
 * the data model that the backend, frontend and ux agents build on.
 */
import { think } from '../lib/simulated-llm.mjs'

export default async function architect(input, ctx) {
  const feature = input.feature
  const llm = await think(ctx, { steps: ['read requirements', 'draft design', 'review trade-offs'], latencyMs: input.latencyMs })
  const design = {
    feature,
    endpoints: [
      { method: 'POST', path: '/api/auth/register' },
      { method: 'POST', path: '/api/auth/login' },
      { method: 'POST', path: '/api/auth/logout' },
      { method: 'GET', path: '/api/auth/session' },
    ],
    components: ['LoginForm', 'RegisterForm', 'SessionProvider', 'LogoutButton'],
    dataModel: { User: ['id', 'email', 'passwordHash', 'createdAt'], Session: ['id', 'userId', 'expiresAt'] },
    decisions: (input.requirements ?? []).map((requirement) => `addressed: ${requirement}`),
    llm,
  }
  await ctx.log(`designed ${design.endpoints.length} endpoints and ${design.components.length} components for "${feature}"`)
  return design
}
