import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// Adds one typecheck, lint and test task per package found under `input.packages`
// (relative to this file) and waits for them all: a fan-out decided at run time.
export default async function discover(input, ctx) {
  const dir = fileURLToPath(new URL(`${input.packages}/`, import.meta.url))
  const packages = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
  await ctx.log(`found ${packages.length} packages: ${packages.join(', ')}`)
  const checks = ['typecheck', 'lint', 'test']
  const tasks = packages.flatMap((name) =>
    checks.map((check) => ({ id: `${check}-${name}`, agent: check, input: { package: name }, description: `${check} of ${name}`, tags: [check, name] })),
  )
  // Rejects with err.code ERR_DEPENDENCY_FAILED if a check fails: this task fails with it.
  const outputs = await ctx.spawn(tasks, { wait: true })
  return {
    packages,
    checks: Object.keys(outputs).length,
    exitCodes: Object.fromEntries(Object.entries(outputs).map(([id, output]) => [id, output?.exitCode])),
  }
}
