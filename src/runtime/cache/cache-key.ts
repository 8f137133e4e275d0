import { createHash } from 'node:crypto'
import { lstat, readFile, readlink } from 'node:fs/promises'
import { isAbsolute, join, relative } from 'node:path'
import { glob } from 'tinyglobby'
import { TroupeError } from '../core/errors.ts'
import { stringify } from '../journal/codec.ts'

/** Files one task's `inputs` may match at most: past it the key is refused (a glob like `**` over a huge tree). */
export const MAX_INPUT_FILES = 100_000

/**
 * The contents of the files `globs` match under `root`, as one digest: each file's path
 * (relative, `/`-separated, sorted) and the SHA-256 of its bytes; a symbolic link counts by
 * its target's text and is never followed, so nothing outside `root` is read. A glob that
 * matches nothing adds nothing (a file appearing later changes the key). `.git` is skipped.
 */
export async function digestInputs(root: string, globs: readonly string[], taskId: string): Promise<string> {
  const hash = createHash('sha256')
  if (globs.length === 0) return hash.digest('base64url')
  const files = await glob([...globs], {
    cwd: root,
    dot: true,
    onlyFiles: true,
    followSymbolicLinks: false,
    expandDirectories: false,
    ignore: ['**/.git/**'],
  })
  if (files.length > MAX_INPUT_FILES) {
    const message = `Task "${taskId}": \`inputs\` match ${files.length} files under ${root}; at most ${MAX_INPUT_FILES} are hashed`
    throw new TroupeError('ERR_PLAN_INVALID', `${message}. Narrow the globs`)
  }
  files.sort()
  for (const file of files) {
    const path = join(root, file)
    // Globs were checked to stay inside (input-globs.ts); this holds whatever the matcher does.
    if (relative(root, path).startsWith('..') || isAbsolute(relative(root, path))) {
      throw new TroupeError('ERR_PLAN_INVALID', `Task "${taskId}": \`inputs\` matched ${JSON.stringify(file)}, outside ${root}`)
    }
    const info = await lstat(path)
    const content = info.isSymbolicLink() ? `link:${await readlink(path)}` : await readFile(path)
    hash.update(`${file}\0${createHash('sha256').update(content).digest('base64url')}\0`)
  }
  return hash.digest('base64url')
}

/**
 * A task's cache key: its definition hash (the journal's: agent definition, module file,
 * model, workspace, input, and its dependencies' definition hashes), the digest of its input
 * files, and its dependencies' outputs (canonical codec text, by dependency id).
 */
export function cacheKey(definitionHash: string, inputsDigest: string, dependencies: Readonly<Record<string, unknown>>): string {
  const deps = Object.keys(dependencies)
    .sort()
    .map((id) => `${JSON.stringify(id)}:${stringify(dependencies[id], { canonical: true })}`)
    .join('\0')
  return createHash('sha256').update(`troupe-cache v1\0${definitionHash}\0${inputsDigest}\0${deps}`).digest('base64url').slice(0, 43)
}
