/**
 * Agent: analyses ONE source file. Real CPU-bound work, nothing simulated: parses the file
 * with the TypeScript compiler, measures it (lines, functions, cyclomatic complexity,
 * Halstead measures, maintainability, identifiers, imports) and searches its functions for
 * near-duplicates with an exact longest-common-subsequence comparison.
 *
 * Input: `{ file, minTokens?, threshold? }`. `file` is absolute or relative to this example's
 * directory (the parent of `agents/`), so the plan works from any working directory.
 * Output: the file's metrics (see the fields below); the `report` task aggregates them.
 *
 * A plain module: it does not import troupe, only `typescript` (a dependency of this repo).
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nearDuplicates } from '../lib/near-duplicates.mjs'
import { measureSource } from '../lib/source-metrics.mjs'

const exampleDir = fileURLToPath(new URL('..', import.meta.url))
const yieldToEventLoop = () => new Promise((done) => setImmediate(done))

export default async function analyseFile(input, ctx) {
  const started = performance.now()
  const path = resolve(exampleDir, input.file)
  const text = await readFile(path, 'utf8')
  ctx.progress(0.05, `read ${Math.round(text.length / 1024)} KB`)

  const metrics = measureSource(path, text)
  ctx.progress(0.3, `parsed: ${metrics.functions.length} functions`)

  // The duplicate search is the long part: report progress and check for cancellation
  // between functions. Yielding to the event loop lets the progress messages leave the thread.
  const search = nearDuplicates(metrics.functions, {
    minTokens: input.minTokens ?? 40,
    threshold: input.threshold ?? 0.8,
  })
  let step = search.next()
  let reported = 0
  while (!step.done) {
    if (step.value - reported >= 0.2) {
      reported = step.value
      ctx.progress(0.3 + 0.7 * step.value, 'comparing functions')
      await yieldToEventLoop()
      ctx.signal.throwIfAborted()
    }
    step = search.next()
  }
  const duplicates = step.value

  const functions = metrics.functions
  const byComplexity = [...functions].sort((a, b) => b.complexity - a.complexity || a.line - b.line)
  const longest = functions.reduce((best, f) => (best === undefined || f.lines > best.lines ? f : best), undefined)
  const summary = (f) => ({ name: f.name, line: f.line, lines: f.lines, complexity: f.complexity, maintainability: f.maintainability })
  return {
    file: input.file,
    bytes: metrics.bytes,
    lines: metrics.lines,
    codeLines: metrics.codeLines,
    tokens: metrics.tokens,
    functions: functions.length,
    classes: metrics.classes,
    maxNesting: metrics.maxNesting,
    complexity: {
      total: metrics.totalComplexity,
      average: functions.length === 0 ? 0 : round(metrics.totalComplexity / functions.length),
      max: byComplexity[0]?.complexity ?? 0,
    },
    // Line-weighted, so that one long unmaintainable function is not hidden by many small ones.
    maintainability: weightedMaintainability(functions),
    halstead: metrics.halstead,
    identifiers: metrics.identifiers,
    imports: metrics.imports,
    mostComplex: byComplexity.slice(0, 5).map(summary),
    longestFunction: longest === undefined ? null : summary(longest),
    nearDuplicates: { compared: duplicates.comparisons, count: duplicates.pairs.length, top: duplicates.pairs.slice(0, 10) },
    // Structural fingerprints (token shape, names erased) let the report find clones across files.
    fingerprints: functions
      .filter((f) => f.tokens.length >= (input.minTokens ?? 40))
      .map((f) => ({ hash: createHash('sha1').update(f.tokens.join(' ')).digest('hex').slice(0, 16), name: f.name, line: f.line, tokens: f.tokens.length })),
    analysisMs: Math.round(performance.now() - started),
  }
}

function weightedMaintainability(functions) {
  let weighted = 0
  let lines = 0
  for (const f of functions) {
    weighted += f.maintainability * f.lines
    lines += f.lines
  }
  return lines === 0 ? null : round(weighted / lines)
}

function round(value) {
  return Math.round(value * 100) / 100
}
