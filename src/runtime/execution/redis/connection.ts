import { isIP } from 'node:net'
import type { RedisOptions } from 'ioredis'
import { TroupeError } from '../../core/errors.ts'

/** Connection settings of a `redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]` backend URL. */
export interface RedisTarget {
  /** The URL with its password masked: safe for messages and logs. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly db: number
  /** ACL user (Redis 6+); the password alone authenticates as `default`. */
  readonly username: string | undefined
  readonly password: string | undefined
  /** `rediss://`: TLS, verifying the server's certificate against the system's CAs (NODE_EXTRA_CA_CERTS adds one). */
  readonly tls: boolean
}

const EXPECTED = 'expected "local" or redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB] (percent-encode special characters in the password)'

/** Parses a backend URL; throws ERR_CONFIG_INVALID naming what is wrong (never echoing a password). */
export function parseRedisUrl(url: string): RedisTarget {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  const shown = parsed === undefined ? url.replace(/\/\/[^@/]*@/, '//***@') : masked(parsed)
  const db = parsed === undefined || parsed.pathname === '' || parsed.pathname === '/' ? 0 : Number(parsed.pathname.slice(1))
  const scheme = parsed?.protocol
  const redis = scheme === 'redis:' || scheme === 'rediss:'
  const valid = parsed !== undefined && redis && parsed.hostname !== '' && Number.isSafeInteger(db) && db >= 0
  if (parsed === undefined || !valid) {
    throw new TroupeError('ERR_CONFIG_INVALID', `Config key \`backend\` is ${JSON.stringify(shown)}; ${EXPECTED}`)
  }
  const decode = (text: string) => (text === '' ? undefined : decodeURIComponent(text))
  return {
    url: shown,
    host: parsed.hostname,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    db,
    username: decode(parsed.username),
    password: decode(parsed.password),
    tls: parsed.protocol === 'rediss:',
  }
}

function masked(url: URL): string {
  if (url.password === '') return url.href.replace(/\/$/, '')
  const copy = new URL(url.href)
  copy.password = '***'
  return copy.href.replace(/\/$/, '')
}

/** ioredis options for BullMQ: blocking commands must not be retried per request. */
export function redisOptions(target: RedisTarget): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    // TLS checks the certificate against the host (an IP address takes no server name).
    ...(target.tls ? { tls: isIP(target.host) === 0 ? { servername: target.host } : {} } : {}),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: false,
  }
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
