import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The file piscina loads in each worker thread. From the published build it is
 * `dist/runtime/worker.js`. From the TypeScript sources (tests, tsx) Node 20 worker threads
 * cannot load `.ts` (they ignore `--import tsx`), so the entry and its protocol module are
 * bundled once with esbuild (packages left external) into a cached `.mjs` in node_modules.
 */
export function workerFile(): string {
  const here = fileURLToPath(import.meta.url)
  if (!here.endsWith('.ts')) return join(dirname(here), 'worker.js')
  const sources = ['worker.ts', 'protocol.ts'].map((name) => readFileSync(join(dirname(here), name), 'utf8'))
  const hash = createHash('sha256').update(sources.join('\0')).digest('hex').slice(0, 16)
  const dir = join(dirname(here), '..', '..', 'node_modules', '.cache', 'troupe')
  const file = join(dir, `worker-${hash}.mjs`)
  try {
    readFileSync(file)
    return file
  } catch {
    // not cached yet
  }
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild')
  mkdirSync(dir, { recursive: true })
  // Write then rename, so parallel test workers never load a half-written file.
  const temp = `${file}.${process.pid}.tmp`
  const { outputFiles } = esbuild.buildSync({
    entryPoints: [join(dirname(here), 'worker.ts')],
    bundle: true,
    packages: 'external',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    outfile: temp,
  })
  writeFileSync(temp, outputFiles[0]!.contents)
  renameSync(temp, file)
  return file
}
