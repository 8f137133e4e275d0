import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The file a worker thread loads for an entry module, given the URL of the module that
 * asks (`import.meta.url`) and the entry's name beside it: `NAME.js` next to the caller in
 * the build, or from the TypeScript sources a cached esbuild bundle of `NAME.ts` keyed by
 * the hash of `sources` (the entry and the modules it imports, relative to the caller).
 * Node 20 worker threads cannot load `.ts` (they ignore `--import tsx`), hence the bundle.
 */
export function threadEntryFile(callerUrl: string, name: string, sources: readonly string[]): string {
  const here = fileURLToPath(callerUrl)
  if (!here.endsWith('.ts')) return join(dirname(here), `${name}.js`)
  const texts = sources.map((source) => readFileSync(join(dirname(here), source), 'utf8'))
  const hash = createHash('sha256').update(texts.join('\0')).digest('hex').slice(0, 16)
  const dir = join(packageRoot(), 'node_modules', '.cache', 'troupe')
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

/** The package root: this file is `src/runtime/core/worker-file.ts`. */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
}
