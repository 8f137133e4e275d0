/**
 * SIMULATED LLM. No model is called and nothing is sent anywhere: `think` waits for a fixed
 * latency per step (split into the steps a coding agent would take), reports progress,
 * and reports a made-up token count and cost through `ctx.usage` when the runtime offers it.
 * It stands in for the I/O-bound wait of a real LLM call, which is what makes running
 * several agents at once pay off even on a machine with few cores.
 */

/** Made-up relative speed and price per 1k tokens of the models named in troupe.config.json. */
const SIMULATED_MODELS = {
  opus: { latency: 1.3, usdPer1kTokens: 0.075 },
  sonnet: { latency: 1, usdPer1kTokens: 0.015 },
  haiku: { latency: 0.6, usdPer1kTokens: 0.004 },
}
const DEFAULT_MODEL = 'sonnet'

/**
 * Simulates the LLM calls of one agent: `steps` calls taking `latencyMs` in total (scaled by
 * the model's made-up speed), each producing about `tokensPerStep` tokens. Rejects with the
 * signal's reason when the run is cancelled or the attempt times out.
 */
export async function think(ctx, { steps, latencyMs, tokensPerStep = 800 }) {
  const model = ctx.model ?? DEFAULT_MODEL
  const profile = SIMULATED_MODELS[model] ?? SIMULATED_MODELS[DEFAULT_MODEL]
  await wait(ctx, { steps, latencyMs: latencyMs * profile.latency })
  const tokens = tokensPerStep * steps.length
  // ctx.usage arrived with the budget issue; the example still runs on a runtime without it.
  if (typeof ctx.usage === 'function') {
    await ctx.usage({ tokens, apiCalls: steps.length, costUsd: (tokens / 1000) * profile.usdPer1kTokens, model })
  }
  return { model, tokens }
}

/**
 * Simulated non-LLM work (a build, a deploy): waits `latencyMs` in total over `steps`,
 * reporting each step as progress. Rejects with the signal's reason on cancellation.
 */
export async function wait(ctx, { steps, latencyMs }) {
  for (const [i, step] of steps.entries()) {
    ctx.progress(i / steps.length, step)
    await sleep(latencyMs / steps.length, ctx.signal)
  }
  ctx.progress(1, 'done')
}

/**
 * A simulated transient LLM failure (HTTP 429), thrown after a short wait on the attempts listed in
 * `input.simulateRateLimitOnAttempts` so that the plan's `retries` can be seen at work.
 */
export async function maybeRateLimited(input, ctx) {
  if ((input?.simulateRateLimitOnAttempts ?? []).includes(ctx.attempt)) {
    // A rate-limited call still costs a round trip before the error arrives.
    await sleep(150, ctx.signal)
    const error = new Error(`simulated LLM rate limit (HTTP 429) on attempt ${ctx.attempt}`)
    error.name = 'SimulatedRateLimitError'
    throw error
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted()
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
