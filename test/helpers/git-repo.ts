import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Runs git in `cwd` with a fixed identity; returns stdout. */
export function gitIn(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', ...args], { cwd, encoding: 'utf8' }).trim()
}

/** A fresh repository in a temp dir with one commit holding `files`. */
export function tempRepo(files: Record<string, string> = { 'README.md': 'hello\n' }): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-repo-'))
  gitIn(dir, 'init', '-q', '-b', 'main')
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  gitIn(dir, 'add', '-A')
  gitIn(dir, 'commit', '-q', '-m', 'initial')
  return dir
}
