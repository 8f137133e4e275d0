import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A real redis-server on a free loopback port, in a temp dir: for the Redis bench scenario and the tests. */
export interface TestRedis {
  readonly url: string
  readonly port: number
  /** Sends the server a signal (SIGSTOP/SIGCONT freeze and thaw it, for fault tests). */
  signal(signal: NodeJS.Signals): void
  stop(): Promise<void>
}

/** Starts redis-server on `port` (default: a free one); `args` are more server options (e.g. `--requirepass`). */
export async function startRedis(port?: number, args: readonly string[] = []): Promise<TestRedis> {
  port ??= await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'troupe-redis-'))
  const options = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args]
  const child = spawn('redis-server', options, { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)))
  })
  child.stdout!.resume()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    signal: (signal) => void child.kill(signal),
    stop: () => stopChild(child).then(() => rmSync(dir, { recursive: true, force: true })),
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
