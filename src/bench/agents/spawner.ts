/**
 * Bench agent: adds `input.n` tasks of agent `input.agent` to its run with `ctx.spawn`, in
 * one call, and waits for them when `input.wait` — the dynamic fan-out the seeds ask for.
 */
interface SpawnContext {
  spawn(tasks: readonly Record<string, unknown>[], options?: { readonly wait?: boolean }): Promise<unknown>
}

export default async function spawner(input: { n: number; agent: string; wait: boolean }, ctx: SpawnContext): Promise<number> {
  const tasks = Array.from({ length: input.n }, (_, i) => ({ id: `child-${i}`, agent: input.agent }))
  await ctx.spawn(tasks, { wait: input.wait })
  return input.n
}
