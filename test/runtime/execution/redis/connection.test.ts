import { describe, expect, it } from 'vitest'
import { BACKEND_PATTERN } from '../../../../src/runtime/core/config.ts'
import { parseRedisUrl, redisOptions } from '../../../../src/runtime/execution/redis/connection.ts'
import { troupeErrorOf } from '../../../helpers/errors.ts'

describe('backend URLs', () => {
  it('takes an ACL user, a percent-encoded password and a db from redis://', () => {
    const target = parseRedisUrl('redis://app:s%40cr%2Ft@cache.internal:6380/2')
    expect(target).toMatchObject({ host: 'cache.internal', port: 6380, db: 2, username: 'app', password: 's@cr/t', tls: false })
    expect(target.url).toBe('redis://app:***@cache.internal:6380/2')
  })

  it('turns TLS on for rediss://, checking the server name', () => {
    const options = redisOptions(parseRedisUrl('rediss://:pw@cache.internal'))
    expect(options).toMatchObject({ host: 'cache.internal', port: 6379, password: 'pw', tls: { servername: 'cache.internal' } })
    expect(options.username).toBeUndefined()
  })

  it.each(['redis://:pw@h:1/0', 'rediss://u:pw@h', 'redis://h:6379', 'local'])('accepts %s in config', (url) => {
    expect(BACKEND_PATTERN.test(url)).toBe(true)
  })

  it('refuses another scheme with ERR_CONFIG_INVALID, masking the password', () => {
    const error = troupeErrorOf(() => parseRedisUrl('http://u:hunter2@h:1'))
    expect(error.code).toBe('ERR_CONFIG_INVALID')
    expect(error.message).not.toContain('hunter2')
    expect(error.message).toContain('redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]')
  })
})
