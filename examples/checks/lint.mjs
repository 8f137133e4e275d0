// A tiny lint: no `var`, no `console.log`, no trailing whitespace in a package's sources.
// Prints one JSON line { package, files, problems } (the task's output: jsonl).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
const problems = []
const files = readdirSync(join(dir, 'src')).filter((f) => /\.(ts|js)$/.test(f))
for (const file of files) {
  readFileSync(join(dir, 'src', file), 'utf8').split('\n').forEach((line, i) => {
    const at = `${file}:${i + 1}`
    if (/\bvar\s/.test(line)) problems.push(`${at} uses var`)
    if (/console\.log/.test(line)) problems.push(`${at} has console.log`)
    if (/\s+$/.test(line)) problems.push(`${at} has trailing whitespace`)
  })
}
for (const p of problems) console.error(p)
console.log(JSON.stringify({ package: dir, files: files.length, problems: problems.length }))
process.exitCode = problems.length === 0 ? 0 : 1
