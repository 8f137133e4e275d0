/**
 * Bench agent: adds `input.n` tasks of agent `input.agent` (with `input.input`, if given) to
 * its run with `ctx.spawn`, in one call, and waits for them when `input.wait` — the dynamic
 * fan-out the seeds ask for.
 */
interface SpawnContext {
  spawn(tasks: readonly Record<string, unknown>[], options?: { readonly wait?: boolean }): Promise<unknown>
}

export default async function spawner(input: { n: number; agent: string; wait: boolean; input?: unknown }, ctx: SpawnContext): Promise<number> {
  const each = input.input === undefined ? {} : { input: input.input }
  const tasks = Array.from({ length: input.n }, (_, i) => ({ id: `child-${i}`, agent: input.agent, ...each }))
  await ctx.spawn(tasks, { wait: input.wait })
  return input.n
}
