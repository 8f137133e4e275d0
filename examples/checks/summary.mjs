// Reads the check tasks' outputs (passed in by {{deps.…}} templates as JSON) and prints a summary as JSON.
const results = JSON.parse(process.argv[2])
const rows = Object.entries(results).map(([task, output]) => ({ task, exitCode: output?.exitCode ?? null }))
const failed = rows.filter((r) => r.exitCode !== 0)
for (const r of rows) console.error(`${r.exitCode === 0 ? 'ok  ' : 'FAIL'} ${r.task}`)
console.log(JSON.stringify({ checks: rows.length, failed: failed.length, rows }))
