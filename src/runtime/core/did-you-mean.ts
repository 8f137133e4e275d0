/**
 * " (did you mean "x"?)" for a misspelt name, or '' when no candidate is close. Close means
 * an edit distance of at most max(2, length / 3), so `maxparallel` finds `maxParallel`
 * (case counts as an edit) while unrelated names suggest nothing.
 */
export function didYouMean(name: string, candidates: Iterable<string>, render: (candidate: string) => string = (c) => `"${c}"`): string {
  const best = closest(name, candidates)
  return best === undefined ? '' : ` (did you mean ${render(best)}?)`
}

/** The candidate closest to `name` within the distance {@link didYouMean} allows; ties keep the first. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1
  const lower = name.toLowerCase()
  for (const candidate of candidates) {
    // A difference of case alone is the likeliest slip: rank it as one edit.
    const d = candidate.toLowerCase() === lower ? 1 : editDistance(name, candidate, bestDistance)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/** Levenshtein distance, or `limit` as soon as it is certain to reach it (cheap for far-apart names). */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      row[j] = d
      if (d < rowMin) rowMin = d
    }
    if (rowMin >= limit) return limit
    prev = row
  }
  return prev[b.length]!
}
