import { resolve } from 'node:path'
import { runBench } from '../bench/main.ts'

export interface BenchCommandOptions {
  readonly quick?: boolean
  readonly jsonOut?: string
  readonly only?: readonly string[]
  readonly dataDir?: string
}

/** `troupe bench`: the same as `npm run bench`. Returns the exit code. */
export async function benchCommand(options: BenchCommandOptions): Promise<number> {
  const flags = [options.quick ? '--quick' : '', options.only ? `--only ${options.only.join(',')}` : ''].filter(Boolean)
  return runBench({
    quick: options.quick ?? false,
    ...(options.jsonOut === undefined ? {} : { jsonOut: resolve(options.jsonOut) }),
    ...(options.only === undefined ? {} : { only: options.only }),
    ...(options.dataDir === undefined ? {} : { dataDir: resolve(options.dataDir) }),
    command: ['troupe bench', ...flags].join(' '),
  })
}
