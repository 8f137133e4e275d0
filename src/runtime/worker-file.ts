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
  return threadEntryFile('worker', ['worker.ts', 'protocol.ts'])
}

/**
 * The file a worker thread loads for entry `name` (`src/runtime/NAME.ts`): `NAME.js` next to
 * this module in the build, or from source a cached esbuild bundle keyed by the hash of
 * `sources` (the entry and the runtime modules it imports).
 */
export function threadEntryFile(name: string, sources: readonly string[]): string {
  const here = fileURLToPath(import.meta.url)
  if (!here.endsWith('.ts')) return join(dirname(here), `${name}.js`)
  const texts = sources.map((source) => readFileSync(join(dirname(here), source), 'utf8'))
  const hash = createHash('sha256').update(texts.join('\0')).digest('hex').slice(0, 16)
  const dir = join(dirname(here), '..', '..', 'node_modules', '.cache', 'troupe')
  const file = join(dir, `${name}-${hash}.mjs`)
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
    entryPoints: [join(dirname(here), `${name}.ts`)],
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
