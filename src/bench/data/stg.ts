import { readDataFile } from './dataset.ts'
import { referenceGraph, type ReferenceGraph } from './reference-graph.ts'

/**
 * Parses a Kasahara Standard Task Graph (STG) file: a task count N, then N + 2 lines
 * `id time npred pred…` in topological order, where 0 is a dummy entry and N + 1 a dummy
 * exit (both of time 0), then a `#` trailer. The dummies carry no work and only tie every
 * task to one source and sink, so they are dropped: task k of the file is index k - 1.
 *
 * Some application graphs count the dummies in N as well; the parser therefore trusts the
 * task lines, not N.
 */
export function parseStg(name: string, text: string): ReferenceGraph {
  const hash = text.indexOf('#')
  const numbers = (hash === -1 ? text : text.slice(0, hash)).trim().split(/\s+/).map(Number)
  if (numbers.some((v) => !Number.isSafeInteger(v))) throw new Error(`${name}: not an STG file (non-integer field before the # trailer)`)
  const lines: { id: number; time: number; preds: number[] }[] = []
  for (let at = 1; at < numbers.length; ) {
    const id = numbers[at]!
    const time = numbers[at + 1]!
    const count = numbers[at + 2]!
    lines.push({ id, time, preds: numbers.slice(at + 3, at + 3 + count) })
    at += 3 + count
  }
  lines.forEach((line, k) => {
    if (line.id !== k) throw new Error(`${name}: task line ${k} has id ${line.id}; ids must run 0..N+1`)
  })
  const exit = lines.length - 1
  const real = lines.slice(1, exit)
  const ids = real.map((line) => String(line.id))
  const deps = real.map((line) => line.preds.filter((p) => p !== 0 && p !== exit).map((p) => p - 1))
  const durations = Float64Array.from(real, (line) => line.time)
  return referenceGraph(name, ids, deps, durations)
}

/** Loads `stg/<name>` (e.g. `50/rand0000.stg`) from the data directory. */
export function loadStg(dataDir: string, name: string): ReferenceGraph {
  return parseStg(name, readDataFile(dataDir, `stg/${name}`))
}

/** One row of `stg/optimal_50_100.csv`: published bounds for one graph on m processors. */
export interface StgReference {
  /** e.g. `50/rand0000.stg` */
  readonly graph: string
  readonly tasks: number
  readonly procs: number
  readonly cpLength: number
  readonly totalWork: number
  /** max(CP, ceil(W/m)): the trivial lower bound. */
  readonly trivialBound: number
  /** Proven lower bound: no valid schedule is shorter. */
  readonly optLower: number
  /** Best published schedule length (the optimum when `provenOptimal`). */
  readonly optUpper: number
  readonly provenOptimal: boolean
  /** Whether the row is in `hard_subset.csv` (trivial bound below the published best). */
  readonly hard: boolean
}

/** Reads `stg/optimal_50_100.csv` joined with `stg/hard_subset.csv` (the vendored subset: 396 rows). */
export function loadStgReferences(dataDir: string): StgReference[] {
  const hard = new Set(csvRows(readDataFile(dataDir, 'stg/hard_subset.csv')).map((row) => `${row.graph}@${row.procs}`))
  return csvRows(readDataFile(dataDir, 'stg/optimal_50_100.csv')).map((row) => ({
    graph: row.graph!,
    tasks: Number(row.tasks),
    procs: Number(row.procs),
    cpLength: Number(row.cp_len),
    totalWork: Number(row.total_work),
    trivialBound: Number(row.max_cp_work_over_m),
    optLower: Number(row.opt_lower),
    optUpper: Number(row.opt_upper),
    provenOptimal: row.proven_optimal === '1',
    hard: hard.has(`${row.graph}@${row.procs}`),
  }))
}

function csvRows(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trim().split(/\r?\n/)
  const keys = header!.split(',')
  return lines.map((line) => {
    const values = line.split(',')
    return Object.fromEntries(keys.map((key, i) => [key, values[i] ?? '']))
  })
}
