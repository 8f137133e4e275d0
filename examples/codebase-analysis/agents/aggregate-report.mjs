/**
 * Agent: the final task of the codebase analysis. Depends on every per-file task and
 * combines their outputs (`ctx.dependencies`, by task id) into one report: totals, a
 * per-file table, complexity hotspots, the longest functions, near-duplicates within files,
 * structural clones across files, and the most imported modules. Writes no files: the
 * report is its output (`troupe run … --json` prints it under tasks.report.output).
 *
 * Input: `{ top? }`, how many entries each ranking keeps (default 10).
 * A plain module: it does not import troupe.
 */
export default async function aggregateReport(input, ctx) {
  const top = input?.top ?? 10
  const files = Object.values(ctx.dependencies).filter((output) => output && typeof output.file === 'string')
  if (files.length === 0) throw new Error('the report has no per-file results: make it depend on the analyse-* tasks')

  const totals = { files: files.length, bytes: 0, lines: 0, codeLines: 0, tokens: 0, functions: 0, classes: 0, complexity: 0, analysisMs: 0 }
  for (const f of files) {
    for (const key of ['bytes', 'lines', 'codeLines', 'tokens', 'functions', 'classes', 'analysisMs']) totals[key] += f[key]
    totals.complexity += f.complexity.total
  }

  const perFile = files
    .map((f) => ({
      file: f.file,
      lines: f.lines,
      codeLines: f.codeLines,
      functions: f.functions,
      complexity: f.complexity.total,
      averageComplexity: f.complexity.average,
      maintainability: f.maintainability,
      nearDuplicatePairs: f.nearDuplicates.count,
      analysisMs: f.analysisMs,
    }))
    .sort((a, b) => (a.maintainability ?? 101) - (b.maintainability ?? 101) || a.file.localeCompare(b.file))

  const located = (f, fn) => ({ file: f.file, ...fn })
  const hotspots = files
    .flatMap((f) => f.mostComplex.map((fn) => located(f, fn)))
    .sort((a, b) => b.complexity - a.complexity || a.file.localeCompare(b.file) || a.line - b.line)
    .slice(0, top)
  const longestFunctions = files
    .filter((f) => f.longestFunction !== null)
    .map((f) => located(f, f.longestFunction))
    .sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file))
    .slice(0, top)
  const nearDuplicates = files
    .flatMap((f) => f.nearDuplicates.top.map((pair) => ({ file: f.file, ...pair })))
    .sort((a, b) => b.similarity - a.similarity || Math.min(b.a.tokens, b.b.tokens) - Math.min(a.a.tokens, a.b.tokens))
    .slice(0, top)

  const report = {
    totals,
    perFile,
    hotspots,
    longestFunctions,
    nearDuplicates: { withinFiles: files.reduce((n, f) => n + f.nearDuplicates.count, 0), top: nearDuplicates },
    clonesAcrossFiles: clonesAcrossFiles(files).slice(0, top),
    mostImported: mostImported(files).slice(0, top),
  }

  const worst = perFile[0]
  const hottest = hotspots[0]
  await ctx.log(`${totals.files} files, ${totals.lines} lines (${totals.codeLines} of code), ${totals.functions} functions, ${totals.classes} classes`)
  if (hottest) await ctx.log(`most complex function: ${hottest.name} in ${baseName(hottest.file)}:${hottest.line} (cyclomatic complexity ${hottest.complexity})`)
  if (worst?.maintainability != null) await ctx.log(`least maintainable file: ${baseName(worst.file)} (index ${worst.maintainability} of 100)`)
  await ctx.log(`${report.nearDuplicates.withinFiles} near-duplicate function pairs within files, ${report.clonesAcrossFiles.length} structural clone groups across files`)
  return report
}

/** Functions with the same token shape (names and literals erased) in two or more files. */
function clonesAcrossFiles(files) {
  const groups = new Map()
  for (const f of files) {
    for (const fp of f.fingerprints) {
      let group = groups.get(fp.hash)
      if (group === undefined) groups.set(fp.hash, (group = { tokens: fp.tokens, occurrences: [] }))
      group.occurrences.push({ file: f.file, name: fp.name, line: fp.line })
    }
  }
  return [...groups.values()]
    .filter((g) => new Set(g.occurrences.map((o) => o.file)).size > 1)
    .sort((a, b) => b.tokens * b.occurrences.length - a.tokens * a.occurrences.length)
}

/** Modules by the number of analysed files that import or require them. */
function mostImported(files) {
  const importers = new Map()
  for (const f of files) {
    for (const specifier of Object.keys(f.imports)) importers.set(specifier, (importers.get(specifier) ?? 0) + 1)
  }
  return [...importers]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([module, files]) => ({ module, files }))
}

function baseName(file) {
  return file.slice(file.lastIndexOf('/') + 1)
}
