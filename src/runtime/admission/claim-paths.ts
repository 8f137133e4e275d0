import { realpathSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import picomatch from 'picomatch'

/** A claim as compared: a path (or glob) relative to the run's root, or why it is refused. */
export type NormalisedClaim = { readonly claim: string } | { readonly refused: string }

/**
 * The real path of `path`: symlinks resolved in the longest prefix that exists, the rest
 * appended as written (a claim may name a file not created yet).
 */
function realPath(path: string): string {
  const missing: string[] = []
  let at = path
  for (;;) {
    try {
      const real = realpathSync.native(at)
      return missing.length === 0 ? real : join(real, ...missing.reverse())
    } catch {
      const parent = dirname(at)
      if (parent === at) return path
      missing.push(basename(at))
      at = parent
    }
  }
}

/**
 * Claims compare paths, not text: `src/a.ts`, `src/x/../a.ts`, `./src/./a.ts`, the absolute
 * path and a symlink to it are one claim. A claim is resolved against the run's root (the
 * plan's directory), symlinks resolved, and made relative to the root's real path; a glob's
 * static part is resolved so and its wildcard part kept. A claim outside the root is refused.
 */
export function normaliseClaim(root: string, claim: string): NormalisedClaim {
  const scan = picomatch.scan(claim)
  const base = scan.isGlob ? scan.base : claim
  const rest = scan.isGlob ? scan.glob : ''
  const realRoot = realPath(resolve(root))
  const real = realPath(resolve(root, base === '' ? '.' : base))
  const rel = relative(realRoot, real)
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return { refused: `claim ${JSON.stringify(claim)} resolves to ${real}, outside the run's root ${realRoot}` }
  }
  const path = rel.split(sep).join('/')
  return { claim: rest === '' ? path : path === '' ? rest : `${path}/${rest}` }
}
