import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** One target of a generated Makefile: a shell command after its prerequisites. */
export interface MakeTarget {
  readonly id: string
  readonly command: string
  readonly dependsOn: readonly string[]
}

/** Whether GNU make is on PATH (the peer rows are left out without it). */
export function makeAvailable(): boolean {
  return spawnSync('make', ['--version'], { stdio: 'ignore' }).status === 0
}

/** Writes `dir/Makefile` with one phony target per task and `all` depending on every one; returns its path. */
export function writeMakefile(dir: string, targets: readonly MakeTarget[]): string {
  const ids = targets.map((t) => t.id)
  const lines = [`.PHONY: all ${ids.join(' ')}`, `all: ${ids.join(' ')}`]
  for (const t of targets) lines.push(`${t.id}:${t.dependsOn.map((d) => ` ${d}`).join('')}`, `\t@${t.command}`)
  const file = join(dir, 'Makefile')
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}

/** Runs `make -s -j<jobs> -f <makefile> all`; rejects unless it exits 0. */
export function runMake(makefile: string, jobs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    spawn('make', ['-s', `-j${jobs}`, '-f', makefile, 'all'], { stdio: 'ignore' })
      .on('error', reject)
      .on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`make -j${jobs} exited with ${code}`))))
  })
}
