import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { CLI_ENTRY } from './cli.ts'

const TSX = import.meta.resolve('tsx')
const ROOT = join(import.meta.dirname, '..', '..')

export interface WorkerOptions {
  /** `--name`, when given. */
  readonly name?: string
  /** @default 1 */
  readonly concurrency?: number
  /** More `troupe worker` arguments (`--plan`, `--allow-agents`, …). */
  readonly args?: readonly string[]
  /** @default the repository root */
  readonly cwd?: string
  /** Added to this process's environment. */
  readonly env?: NodeJS.ProcessEnv
}

/**
 * Starts a real `troupe worker` process on `redisUrl` and resolves once it takes attempts
 * (rejects with its stderr if it exits first). The process is pushed onto `children`, for the
 * test's cleanup to kill.
 */
export function startTroupeWorker(redisUrl: string, children: ChildProcess[], options: WorkerOptions = {}): Promise<ChildProcess> {
  const args = ['--import', TSX, CLI_ENTRY, 'worker', '--backend', redisUrl, '--concurrency', String(options.concurrency ?? 1)]
  if (options.name !== undefined) args.push('--name', options.name)
  const child = spawn(process.execPath, [...args, ...(options.args ?? [])], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  children.push(child)
  return new Promise((resolve, reject) => {
    let err = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString()
      if (err.includes('taking attempts')) resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`worker ${options.name ?? ''} exited with ${code}: ${err}`)))
  })
}
