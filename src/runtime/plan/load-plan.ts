import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, extname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { TroupeError } from '../core/errors.ts'
import type { AgentEnvironment } from './agents.ts'
import { MAX_INPUT_DEPTH, linkPlan, type CompiledPlan, type CompileOptions } from './plan.ts'

/** `yaml` (~50 ms to load), required on the first YAML plan: `import('troupe')` and JSON plans skip it. */
let yamlParse: typeof import('yaml').parse | undefined
function parseYaml(text: string): unknown {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse
  return yamlParse(text)
}

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
    const message = (error as Error).message
    // The YAML parser recurses per level of nesting; a hostile file overflows its stack.
    const why = message.includes('Maximum call stack size exceeded')
      ? `it nests too deeply to read (a task's input may nest at most ${MAX_INPUT_DEPTH} levels)`
      : message
    throw new TroupeError('ERR_PLAN_INVALID', `Plan file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${why}`, { cause: error })
  }
  return compilePlan(data, { baseDir: dirname(path), source: `plan file ${path}` })
}

/**
 * Validates a plan object and resolves it for execution, finding agent modules on disk.
 * Throws a TroupeError naming the field, the value received and what is allowed.
 */
export function compilePlan(data: unknown, options: CompileOptions = {}): CompiledPlan {
  return linkPlan(data, {
    baseDir: resolve(options.baseDir ?? process.cwd()),
    environment: machineEnvironment,
    ...(options.source === undefined ? {} : { source: options.source }),
  })
}

/** The real machine: files on disk, PATH, the process's environment variables. */
const machineEnvironment: AgentEnvironment = {
  resolveModule,
  which(command, baseDir) {
    if (command.includes('/')) {
      const file = isAbsolute(command) ? command : resolve(baseDir, command)
      return isExecutable(file) ? file : undefined
    }
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue
      const file = join(dir, command)
      if (isExecutable(file)) return file
    }
    return undefined
  },
  hasEnv: (name) => typeof process.env[name] === 'string' && process.env[name] !== '',
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

function resolveModule(path: string, baseDir: string, name: string): string {
  const file = path.startsWith('file:') ? fileURLToPath(path) : isAbsolute(path) ? path : resolve(baseDir, path)
  if (!existsSync(file)) {
    throw new TroupeError('ERR_PLAN_UNKNOWN_AGENT', `Agent "${name}" module not found: ${file} (resolved from "${path}" against ${baseDir})`)
  }
  return pathToFileURL(file).href
}
