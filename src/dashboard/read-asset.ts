import { readFileSync } from 'node:fs'

/**
 * Reads a dashboard asset by file name. The assets sit next to this module: in
 * `src/dashboard/assets` from source, in `dist/dashboard/assets` once built.
 */
export function readAsset(file: 'index.html' | 'app.js' | 'styles.css'): string {
  return readFileSync(new URL(`./assets/${file}`, import.meta.url), 'utf8')
}
