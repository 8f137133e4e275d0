export { freePort, startRedis, type TestRedis } from '../../src/bench/redis-server.ts'
