import { readdirSync, readFileSync } from 'node:fs'

/**
 * Live processes (not zombies) whose environment carries `TROUPE_MARK=<mark>`, with their
 * process groups: how the bench, the cleanup script and the tests count what outlived an
 * attempt. Linux only (`/proc`).
 */
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
