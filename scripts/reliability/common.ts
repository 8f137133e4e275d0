import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Helpers shared by the reliability scripts: a workspace, a plan of marker tasks, the CLI as a child process. */
export const REPO = join(import.meta.dirname, '..', '..')
export const CLI = join(REPO, 'src', 'cli', 'main.ts')
export const MARKER = join(REPO, 'test', 'fixtures', 'agents', 'marker.mjs')
const TSX = import.meta.resolve('tsx')

export function workspace(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `troupe-rel-${prefix}-`))
  writeFileSync(join(dir, 'troupe.config.json'), JSON.stringify({ governor: { enabled: false }, pool: { minThreads: 2, maxThreads: 2 } }))
  return dir
}

/** `tasks` marker tasks in `chains` dependency chains; each appends its id to marks.txt when it starts. */
export function writePlan(dir: string, tasks: number, chains: number, ms: number): string {
  const marks = join(dir, 'marks.txt')
  const list = Array.from({ length: tasks }, (_, i) => {
    const chain = i % chains
    const previous = i - chains
    return { id: `t${i}`, agent: MARKER, input: { file: marks, ms }, ...(previous >= 0 && chain === previous % chains ? { dependsOn: [`t${previous}`] } : {}) }
  })
  const file = join(dir, 'plan.json')
  writeFileSync(file, JSON.stringify({ name: 'reliability', maxParallel: 4, tasks: list }))
  return file
}

export function marks(dir: string): string[] {
  const file = join(dir, 'marks.txt')
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
}

export function startCli(dir: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
}

export function finished(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk) => (stdout += chunk))
  child.stderr?.on('data', (chunk) => (stderr += chunk))
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
