import { TroupeError, describeValue } from '../core/errors.ts'

/**
 * Checks a task's `inputs` globs (pure: no file is read). Each is relative to the plan's
 * directory and may not leave it: no absolute path, no `..` segment, no home (`~`), no
 * empty pattern, no NUL. Throws ERR_PLAN_INVALID naming the field and the value.
 */
export function checkInputGlobs(globs: readonly string[], field: string): void {
  for (let i = 0; i < globs.length; i++) {
    const glob = globs[i]!
    const problem = globProblem(glob)
    if (problem === undefined) continue
    throw new TroupeError(
      'ERR_PLAN_INVALID',
      `Invalid plan: \`${field}[${i}]\` is ${describeValue(glob)}: ` +
        `expected a glob relative to the plan's directory that stays inside it (${problem})`,
    )
  }
}

/** `..` as a whole path segment, a brace alternative or an extglob alternative. */
const PARENT = /(^|[/\\{,(|])\.\.($|[/\\},)|])/

function globProblem(glob: string): string | undefined {
  if (glob.trim() === '') return 'it is empty'
  if (glob.includes('\0')) return 'it holds a NUL character'
  if (glob.startsWith('/') || glob.startsWith('\\') || /^[A-Za-z]:/.test(glob)) return 'it is absolute'
  if (glob.startsWith('~')) return 'it names a home directory'
  // Also inside braces and extglobs: `{..,x}/y` expands to `../y`.
  if (PARENT.test(glob)) return 'a `..` segment leaves the directory'
  return undefined
}
