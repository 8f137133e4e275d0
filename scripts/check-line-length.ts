#!/usr/bin/env node
// Lines over the limit (STYLE.md: 140 characters) in source files. Folders after `--fail`
// fail the check (exit 1); folders after `--warn` are only reported, with a count: they are
// being brought under the limit file by file. Files after `--skip` are left out of `--fail`.
//
//   node --import tsx scripts/check-line-length.ts --fail src/cli --skip src/cli/main.ts --warn src test
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const MAX = 140
const EXTENSIONS = /\.(ts|mts|js|mjs|cjs)$/

function files(path: string): string[] {
  if (statSync(path).isFile()) return EXTENSIONS.test(path) ? [path] : []
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) =>
    entry.name === 'node_modules' || entry.name === 'fixtures' ? [] : files(join(path, entry.name)),
  )
}

/** Every `file:line (length)` over the limit under these paths, counting characters (not bytes). */
export function overLong(paths: readonly string[], max = MAX): string[] {
  const found: string[] = []
  for (const file of [...new Set(paths.flatMap(files))].sort()) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const length = [...line].length
        if (length > max) found.push(`${relative(process.cwd(), file)}:${i + 1} (${length})`)
      })
  }
  return found
}

function main(argv: readonly string[]): number {
  const fail: string[] = []
  const warn: string[] = []
  const skip: string[] = []
  let into = fail
  for (const arg of argv) {
    if (arg === '--fail') into = fail
    else if (arg === '--warn') into = warn
    else if (arg === '--skip') into = skip
    else into.push(arg)
  }
  const skipped = new Set(skip.map((file) => relative(process.cwd(), file)))
  const failing = overLong(fail).filter((line) => !skipped.has(line.slice(0, line.indexOf(':'))))
  const failed = new Set(failing)
  const warning = overLong(warn).filter((line) => !failed.has(line))
  for (const line of failing) process.stderr.write(`${line}: over ${MAX} characters\n`)
  if (warning.length > 0) {
    process.stderr.write(`line length: ${warning.length} lines over ${MAX} characters in ${warn.join(', ')} (warning only)\n`)
  }
  if (failing.length > 0) process.stderr.write(`line length: ${failing.length} lines over ${MAX} characters in ${fail.join(', ')}\n`)
  return failing.length > 0 ? 1 : 0
}

process.exitCode = main(process.argv.slice(2))
