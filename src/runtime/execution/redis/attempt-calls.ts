import { ERROR_CODES, TroupeError, type ErrorCode } from '../../core/errors.ts'
import type { SpawnAnswer } from '../executor.ts'
import { PREFIX, SERVICE_TIMEOUT_MS } from './protocol.ts'

interface Waiter {
  /** A reply for this call arrived (parsed JSON, not yet checked). */
  readonly reply: (reply: Record<string, unknown>) => void
  /** The attempt ended before the call was answered. */
  readonly end: () => void
}

/**
 * Calls of this worker's attempts that the coordinator answers over pub/sub (`ctx.spawn`,
 * and the `ctx` services: scratchpad, messages, limits, claims): each call has a number,
 * unique on this worker and increasing, and its answer arrives on the attempt's answers
 * channel. A service call the coordinator does not take up within the timeout fails with
 * ERR_BACKEND_UNAVAILABLE; calls of an attempt that ends unanswered are refused.
 */
export class AttemptCalls {
  readonly #waiting = new Map<string, Map<number, Waiter>>()
  readonly #timeoutMs: number
  #next = 0

  constructor(timeoutMs = SERVICE_TIMEOUT_MS) {
    this.#timeoutMs = timeoutMs
  }

  /** `ctx.spawn`: no timeout (a spawn with `wait` answers once the tasks have ended); never rejects. */
  spawn(jobId: string, send: (call: number) => void): Promise<SpawnAnswer> {
    return new Promise((resolve) => {
      const call = this.#register(jobId, {
        reply: (reply) => resolve(reply.answer as SpawnAnswer),
        end: () => resolve({ ok: false, error: { code: 'ERR_CANCELLED', message: 'The attempt ended before the coordinator answered' } }),
      })
      send(call)
    })
  }

  /**
   * A service call: resolves with the coordinator's value, rejects with its error (a
   * TroupeError with the code the run gave). An `accepted` reply starts the timeout again:
   * the coordinator has the call and answers when it can (`ctx.acquire` waiting for a unit),
   * confirming it meanwhile.
   */
  service(jobId: string, what: string, send: (call: number) => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const call = this.#register(jobId, {
        reply: (reply) => {
          clearTimeout(timer)
          // Accepted: the coordinator works on it, and confirms again before the timeout runs out.
          if (reply.accepted === true) return void (timer = arm())
          if ('value' in reply) return resolve(reply.value)
          const error = (reply.error ?? {}) as { code?: unknown; message?: unknown }
          const code = ERROR_CODES.includes(error.code as ErrorCode) ? (error.code as ErrorCode) : 'ERR_TASK_FAILED'
          reject(new TroupeError(code, typeof error.message === 'string' ? error.message : `${what}: the coordinator refused the call`))
        },
        end: () => {
          clearTimeout(timer)
          reject(new TroupeError('ERR_CANCELLED', `${what}: the attempt ended before the coordinator answered`))
        },
      })
      const arm = () => {
        const armed = setTimeout(() => {
          this.#waiting.get(jobId)?.delete(call)
          const seconds = Math.round(this.#timeoutMs / 1000)
          const message = `${what}: the coordinator did not answer within ${seconds} s (is the run still going, and Redis reachable?)`
          reject(new TroupeError('ERR_BACKEND_UNAVAILABLE', message))
        }, this.#timeoutMs)
        armed.unref()
        return armed
      }
      timer = arm()
      send(call)
    })
  }

  /** A message on an answers channel: settles the call it answers (anything else is ignored). */
  answered(channel: string, message: string): void {
    const calls = this.#waiting.get(channel.slice(`${PREFIX}:answers:`.length))
    if (calls === undefined) return
    let reply: unknown
    try {
      reply = JSON.parse(message)
    } catch {
      return
    }
    if (reply === null || typeof reply !== 'object') return
    const call = (reply as { call?: unknown }).call
    const waiter = typeof call === 'number' ? calls.get(call) : undefined
    if (waiter === undefined) return
    // Accepted: the call stays registered for its answer.
    if ((reply as { accepted?: unknown }).accepted !== true) calls.delete(call as number)
    waiter.reply(reply as Record<string, unknown>)
  }

  /** The attempt ended: its calls still waiting are refused. */
  forget(jobId: string): void {
    const calls = this.#waiting.get(jobId)
    this.#waiting.delete(jobId)
    for (const waiter of calls?.values() ?? []) waiter.end()
  }

  #register(jobId: string, waiter: Waiter): number {
    const call = ++this.#next
    let calls = this.#waiting.get(jobId)
    if (calls === undefined) this.#waiting.set(jobId, (calls = new Map()))
    calls.set(call, waiter)
    return call
  }
}
