import { readdirSync, readFileSync } from 'node:fs'

/** Processes (not zombies) whose environment carries `TROUPE_MARK=<mark>`, with their process groups. */
export function survivors(mark: string): { pid: number; pgrp: number }[] {
  const found: { pid: number; pgrp: number }[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'latin1')
      if (!environ.split('\0').includes(`TROUPE_MARK=${mark}`)) continue
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z') continue
      found.push({ pid, pgrp: Number(fields[2]) })
    } catch {
      // gone, or not ours to read
    }
  }
  return found
}

/** Polls until `check` holds or `tries` run out (process exit is asynchronous). */
export async function eventually(check: () => boolean, tries = 100, everyMs = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return check()
}
