/**
 * Copy-paste detection between the functions of one file. Two functions are near-duplicates
 * when their normalised token sequences (names and literal values erased) share a long
 * common subsequence: similarity = 2·LCS / (|a| + |b|). The LCS is the exact O(|a|·|b|)
 * dynamic programme, which makes this the CPU-heavy part of the per-file analysis.
 */

/**
 * Compares every pair of functions of at least `minTokens` tokens that could reach
 * `threshold`, yielding the fraction of the work done after each function so that the
 * caller can report progress and stay responsive to cancellation. Returns the pairs found,
 * most similar first.
 */
export function* nearDuplicates(functions, { minTokens = 40, threshold = 0.8 } = {}) {
  const symbols = new Map()
  const intern = (token) => {
    let id = symbols.get(token)
    if (id === undefined) symbols.set(token, (id = symbols.size))
    return id
  }
  const candidates = functions
    .filter((f) => f.tokens.length >= minTokens)
    .map((f) => ({ fn: f, seq: Int32Array.from(f.tokens, intern) }))

  const longest = Math.max(0, ...candidates.map((c) => c.seq.length))
  const previous = new Int32Array(longest + 1)
  const current = new Int32Array(longest + 1)
  const pairs = []
  let comparisons = 0
  for (let i = 0; i < candidates.length; i++) {
    const a = candidates[i]
    for (let j = i + 1; j < candidates.length; j++) {
      const b = candidates[j]
      if (contains(a.fn, b.fn) || contains(b.fn, a.fn)) continue
      // 2·min/(|a|+|b|) bounds the similarity: skip pairs too different in size to reach it.
      const total = a.seq.length + b.seq.length
      if ((2 * Math.min(a.seq.length, b.seq.length)) / total < threshold) continue
      comparisons++
      const similarity = (2 * lcsLength(a.seq, b.seq, previous, current)) / total
      if (similarity >= threshold) {
        pairs.push({
          a: { name: a.fn.name, line: a.fn.line, tokens: a.seq.length },
          b: { name: b.fn.name, line: b.fn.line, tokens: b.seq.length },
          similarity: Math.round(similarity * 1000) / 1000,
        })
      }
    }
    yield (i + 1) / candidates.length
  }
  pairs.sort((x, y) => y.similarity - x.similarity || x.a.line - y.a.line)
  return { candidates: candidates.length, comparisons, pairs }
}

/** Length of the longest common subsequence, in two reusable rows. */
export function lcsLength(a, b, previous = new Int32Array(b.length + 1), current = new Int32Array(b.length + 1)) {
  let prev = previous
  let curr = current
  prev.fill(0, 0, b.length + 1)
  for (let i = 0; i < a.length; i++) {
    const ai = a[i]
    curr[0] = 0
    for (let j = 0; j < b.length; j++) {
      curr[j + 1] = ai === b[j] ? prev[j] + 1 : prev[j + 1] > curr[j] ? prev[j + 1] : curr[j]
    }
    const swap = prev
    prev = curr
    curr = swap
  }
  return prev[b.length]
}

function contains(outer, inner) {
  return outer.start <= inner.start && inner.end <= outer.end
}
