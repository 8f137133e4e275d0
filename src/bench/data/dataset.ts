import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Optional reference data is absent (a data directory without it, or `--data-dir` pointing
 * elsewhere). The bench reports the scenario as skipped, in one line, instead of failing it.
 */
export class DatasetMissingError extends Error {
  override readonly name = 'DatasetMissingError'
}

/** Reads `relative` (e.g. `stg/50/rand0000.stg`) from the data directory. */
export function readDataFile(dataDir: string, relative: string): string {
  try {
    return readFileSync(join(dataDir, relative), 'utf8')
  } catch (error) {
    throw missing(dataDir, relative, error)
  }
}

/** Lists the folder `relative` of the data directory. */
export function listDataDir(dataDir: string, relative: string): string[] {
  try {
    return readdirSync(join(dataDir, relative))
  } catch (error) {
    throw missing(dataDir, relative, error)
  }
}

function missing(dataDir: string, relative: string, error: unknown): Error {
  if ((error as NodeJS.ErrnoException)?.code !== 'ENOENT') return error as Error
  return new DatasetMissingError(`reference data ${relative} not found in ${dataDir} (set TROUPE_DATA_DIR or --data-dir to a copy of data/)`, { cause: error })
}
