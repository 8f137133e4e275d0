import picomatch from 'picomatch'

interface Pattern {
  readonly source: string
  /** Normalised path, or for a glob its static part before the first wildcard. */
  readonly base: string
  readonly glob: boolean
  readonly matches: ((path: string) => boolean) | undefined
}

const cache = new Map<string, Pattern>()

function compile(claim: string): Pattern {
  let pattern = cache.get(claim)
  if (pattern === undefined) {
    const scan = picomatch.scan(claim)
    const base = normalise(scan.base)
    pattern = scan.isGlob
      ? { source: claim, base, glob: true, matches: picomatch(normalise(claim), { dot: true }) }
      : { source: claim, base, glob: false, matches: undefined }
    // Plans repeat the same few claims; the cache stays as small as the set of distinct ones.
    cache.set(claim, pattern)
  }
  return pattern
}

function normalise(path: string): string {
  return path.replace(/\\/g, '/').replace(/\/{2,}/g, '/').replace(/^(\.\/)+/, '').replace(/\/+$/, '')
}

/** `inner` is `outer` or lies beneath it ('' is the root and contains everything). */
function within(inner: string, outer: string): boolean {
  return outer === '' || inner === outer || inner.startsWith(`${outer}/`)
}

function ancestorsOf(path: string): string[] {
  const out: string[] = []
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) out.push(path.slice(0, at))
  return out
}

/**
 * Whether two claims can name the same file. Claims are paths or picomatch globs, relative
 * to the same root (`./` and trailing slashes ignored, case-sensitive).
 *
 * - A plain path claims that file or directory and everything beneath it: `src/api`
 *   overlaps `src/api/user.ts`.
 * - A path and a glob overlap when the glob matches the path or one of its parent
 *   directories, or when the glob's static part (before its first wildcard) lies inside
 *   the path.
 * - Two globs overlap when the static part of one lies inside the static part of the
 *   other: `src/api/**` and `src/**\/*.ts` overlap, `src/api/**` and `docs/*` do not.
 *   Deciding whether two globs share a match exactly is a regular-language intersection,
 *   so this errs on the side of overlap (`src/*.ts` and `src/*.md` are treated as
 *   overlapping). A false overlap only serialises two tasks; a missed one would let them
 *   write the same file at once.
 */
export function claimsOverlap(a: string, b: string): boolean {
  const pa = compile(a)
  const pb = compile(b)
  if (!pa.glob && !pb.glob) return within(pa.base, pb.base) || within(pb.base, pa.base)
  if (pa.glob && pb.glob) return within(pa.base, pb.base) || within(pb.base, pa.base)
  const [path, glob] = pa.glob ? [pb, pa] : [pa, pb]
  if (within(glob.base, path.base)) return true
  if (!within(path.base, glob.base)) return false
  return glob.matches!(path.base) || ancestorsOf(path.base).some((dir) => glob.matches!(dir))
}

/** The first pair `[x, y]` with x of `a` and y of `b` that overlap, if any. */
export function firstOverlap(a: readonly string[], b: readonly string[]): readonly [string, string] | undefined {
  for (const x of a) for (const y of b) if (claimsOverlap(x, y)) return [x, y]
  return undefined
}
