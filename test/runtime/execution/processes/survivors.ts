export { survivors } from '../../../../src/bench/survivors.ts'

/** Polls until `check` holds or `tries` run out (process exit is asynchronous). */
export async function eventually(check: () => boolean, tries = 100, everyMs = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return check()
}
