import type { RedisOptions } from 'ioredis'
import { TroupeError } from '../../core/errors.ts'

/** Connection settings of a `redis://HOST:PORT[/DB]` backend URL. */
export interface RedisTarget {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly db: number
}

/** Parses a backend URL; throws ERR_CONFIG_INVALID naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TroupeError('ERR_CONFIG_INVALID', `Config key \`backend\` is ${JSON.stringify(url)}; expected "local" or redis://HOST:PORT[/DB]`)
  }
  const db = parsed.pathname === '' || parsed.pathname === '/' ? 0 : Number(parsed.pathname.slice(1))
  if (parsed.protocol !== 'redis:' || parsed.hostname === '' || !Number.isSafeInteger(db) || db < 0) {
    throw new TroupeError('ERR_CONFIG_INVALID', `Config key \`backend\` is ${JSON.stringify(url)}; expected "local" or redis://HOST:PORT[/DB]`)
  }
  return { url, host: parsed.hostname, port: parsed.port === '' ? 6379 : Number(parsed.port), db }
}

/** ioredis options for BullMQ: blocking commands must not be retried per request. */
export function redisOptions(target: RedisTarget): RedisOptions {
  return { host: target.host, port: target.port, db: target.db, maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false }
}

/**
 * Pings the backend once: ERR_BACKEND_UNAVAILABLE (an input error, exit 2) when it cannot be
 * reached within `timeoutMs`, before any task starts.
 */
export async function checkReachable(target: RedisTarget, timeoutMs = 3_000): Promise<void> {
  // Loaded here: a local runtime imports this file (parseRedisUrl) but never ioredis.
  const { Redis } = await import('ioredis')
  const client = new Redis({ ...redisOptions(target), lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: timeoutMs })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.ping()
  } catch (error) {
    throw new TroupeError('ERR_BACKEND_UNAVAILABLE', `Backend ${target.url} cannot be reached: ${(error as Error).message}; start Redis there or use backend "local"`, { cause: error })
  } finally {
    client.disconnect()
  }
}
