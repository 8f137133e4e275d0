import { fileURLToPath } from 'node:url'

export type BenchAgent = 'busy-hash' | 'simulated-llm' | 'noop' | 'spawner'

/**
 * Absolute path of a bench agent module. From the build it is the compiled `.js` beside this
 * file; from the TypeScript sources (tests) the `.ts`, which the worker loads through tsx.
 */
export function benchAgentFile(name: BenchAgent): string {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  return fileURLToPath(new URL(`./agents/${name}${extension}`, import.meta.url))
}
