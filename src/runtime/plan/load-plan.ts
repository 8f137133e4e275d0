import { existsSync, readFileSync } from 'node:fs'
import { dirname, extname, isAbsolute, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { TroupeError } from '../core/errors.ts'
import { linkPlan, type CompiledPlan, type CompileOptions } from './plan.ts'

/** Reads a plan file (`.json`, `.yaml`, `.yml`) and validates it. */
export function loadPlan(file: string): CompiledPlan {
  const path = resolve(file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new TroupeError('ERR_PLAN_INVALID', `Cannot read plan file ${path}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  let data: unknown
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw new TroupeError('ERR_PLAN_INVALID', `Plan file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  return compilePlan(data, { baseDir: dirname(path) })
}

/**
 * Validates a plan object and resolves it for execution, finding agent modules on disk.
 * Throws a TroupeError naming the field, the value received and what is allowed.
 */
export function compilePlan(data: unknown, options: CompileOptions = {}): CompiledPlan {
  return linkPlan(data, { baseDir: resolve(options.baseDir ?? process.cwd()), resolveModule })
}

function resolveModule(path: string, baseDir: string, name: string): string {
  const file = path.startsWith('file:') ? fileURLToPath(path) : isAbsolute(path) ? path : resolve(baseDir, path)
  if (!existsSync(file)) {
    throw new TroupeError('ERR_PLAN_UNKNOWN_AGENT', `Agent "${name}" module not found: ${file} (resolved from "${path}" against ${baseDir})`)
  }
  return pathToFileURL(file).href
}
