import { listDataDir, readDataFile } from './dataset.ts'
import { referenceGraph, type ReferenceGraph } from './reference-graph.ts'

/**
 * Parses a WfInstances trace converted to `*.dag.tsv`: a `#` header, then one line per
 * task `id<TAB>runtime_s<TAB>parent,parent,…`. Lines need not be in dependency order.
 * Durations are converted to milliseconds.
 */
export function parseWfInstance(name: string, text: string): ReferenceGraph {
  const rows = text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split('\t'))
  const index = new Map(rows.map(([id], i) => [id!, i]))
  if (index.size !== rows.length) throw new Error(`${name}: duplicate task ids`)
  const deps = rows.map(([id, , parents]) =>
    (parents ?? '')
      .split(',')
      .filter((p) => p !== '')
      .map((p) => {
        const dep = index.get(p)
        if (dep === undefined) throw new Error(`${name}: task ${id} depends on unknown task ${p}`)
        return dep
      }),
  )
  const durations = Float64Array.from(rows, ([id, runtime]) => {
    const seconds = Number(runtime)
    if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`${name}: task ${id} has runtime ${runtime}`)
    return seconds * 1000
  })
  return referenceGraph(name, rows.map(([id]) => id!), deps, durations)
}

/** Loads every `wfinstances/*.dag.tsv` from the data directory, by file name. */
export function loadWfInstances(dataDir: string): ReferenceGraph[] {
  return listDataDir(dataDir, 'wfinstances')
    .filter((file) => file.endsWith('.dag.tsv'))
    .sort()
    .map((file) => parseWfInstance(file, readDataFile(dataDir, `wfinstances/${file}`)))
}
