/**
 * The per-agent demand troupe measured in a project, kept between runs in
 * `<checkpoint.dir>/demand.json` (`.troupe/demand.json`): written at the end of each run with
 * the journal on, read by `troupe plan` to show what each agent costs before anything runs.
 * Keyed by agent name, as the plan's `agents` map names them.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AgentDemand } from './demand.ts'

export const DEMAND_FILE = 'demand.json'

interface DemandDocument {
  readonly version: 1
  readonly agents: Readonly<Record<string, AgentDemand>>
}

/** Measured estimates stored in `dir` (the checkpoint directory); `{}` when there is no readable file. */
export function readDemandFile(dir: string): Record<string, AgentDemand> {
  let document: unknown
  try {
    document = JSON.parse(readFileSync(join(dir, DEMAND_FILE), 'utf8'))
  } catch {
    return {}
  }
  const agents = (document as Partial<DemandDocument> | null)?.agents
  const out: Record<string, AgentDemand> = {}
  if (typeof agents !== 'object' || agents === null) return out
  for (const [name, demand] of Object.entries(agents)) {
    const { cpu, memoryMb, samples } = (demand ?? {}) as Partial<AgentDemand>
    if (typeof cpu !== 'number' || !Number.isFinite(cpu) || cpu < 0 || typeof samples !== 'number') continue
    out[name] = { cpu, ...(typeof memoryMb === 'number' && Number.isFinite(memoryMb) ? { memoryMb } : {}), samples, source: 'measured' }
  }
  return out
}

/**
 * Stores the measured estimates among `estimates` in `dir`, over what the file held (agents
 * not measured this time keep their stored figures). Written to a temporary file, then
 * renamed: a reader never sees half a file. Throws on I/O errors.
 */
export function writeDemandFile(dir: string, estimates: Readonly<Record<string, AgentDemand>>): void {
  const measured = Object.entries(estimates).filter(([, demand]) => demand.source === 'measured')
  if (measured.length === 0) return
  const document: DemandDocument = { version: 1, agents: { ...readDemandFile(dir), ...Object.fromEntries(measured) } }
  mkdirSync(dir, { recursive: true })
  const file = join(dir, DEMAND_FILE)
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, `${JSON.stringify(document, null, 2)}\n`)
  renameSync(temporary, file)
}
