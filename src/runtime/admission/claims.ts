import picomatch from 'picomatch'
import type { CompiledTask } from '../plan/plan.ts'
import type { Gate } from '../run.ts'

/** What `ctx.claim(path)` resolves to inside an agent. */
export interface ClaimResult {
  readonly granted: boolean
  /** When refused: the id of a task holding an overlapping claim. */
  readonly holder?: string
  /** When refused: the run of that task. */
  readonly holderRunId?: string
}

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

interface Holder {
  readonly runId: string
  readonly taskId: string
  /** Claims held, static (from the plan) and dynamic (`ctx.claim`), with multiplicity. */
  readonly claims: string[]
}

/**
 * The claims held by the running tasks of every run on a runtime. As a {@link Gate} it
 * keeps a task QUEUED while another running task holds an overlapping claim; the refused
 * task holds no slot meanwhile, so waiting on a claim never blocks anything else.
 * `ctx.claim` never waits: it answers at once and the agent decides what to do.
 * Everything a task holds is released when its attempt's slot is freed, however it ended.
 */
export class ClaimRegistry implements Gate {
  readonly #holders = new Map<string, Holder>()

  /** Tasks holding claims right now. */
  get size(): number {
    return this.#holders.size
  }

  tryAcquire(runId: string, task: CompiledTask): boolean {
    if (task.claims.length === 0) return true
    if (this.#conflict(runId, task.id, task.claims) !== undefined) return false
    this.#holderFor(runId, task.id).claims.push(...task.claims)
    return true
  }

  release(runId: string, task: CompiledTask): void {
    this.#holders.delete(keyOf(runId, task.id))
  }

  /** `ctx.claim(path)`: takes `path` for the task unless another task holds an overlapping claim. */
  claim(runId: string, taskId: string, path: string): ClaimResult {
    const conflict = this.#conflict(runId, taskId, [path])
    if (conflict !== undefined) return { granted: false, holder: conflict.taskId, holderRunId: conflict.runId }
    this.#holderFor(runId, taskId).claims.push(path)
    return { granted: true }
  }

  /** `ctx.release(path)`: gives back one hold on `path` (no-op when not held). Returns whether it was held. */
  unclaim(runId: string, taskId: string, path: string): boolean {
    const key = keyOf(runId, taskId)
    const holder = this.#holders.get(key)
    const at = holder?.claims.indexOf(path) ?? -1
    if (at === -1) return false
    holder!.claims.splice(at, 1)
    if (holder!.claims.length === 0) this.#holders.delete(key)
    return true
  }

  /** Who holds what, for diagnostics. */
  held(): { runId: string; taskId: string; claims: readonly string[] }[] {
    return [...this.#holders.values()].map((h) => ({ runId: h.runId, taskId: h.taskId, claims: [...h.claims] }))
  }

  #conflict(runId: string, taskId: string, claims: readonly string[]): Holder | undefined {
    const self = keyOf(runId, taskId)
    for (const [key, holder] of this.#holders) {
      if (key !== self && firstOverlap(claims, holder.claims) !== undefined) return holder
    }
    return undefined
  }

  #holderFor(runId: string, taskId: string): Holder {
    const key = keyOf(runId, taskId)
    let holder = this.#holders.get(key)
    if (holder === undefined) this.#holders.set(key, (holder = { runId, taskId, claims: [] }))
    return holder
  }
}

function keyOf(runId: string, taskId: string): string {
  return `${runId}\u0000${taskId}`
}
