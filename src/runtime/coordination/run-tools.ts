import type { ClaimResult } from '../admission/gate.ts'
import type { Note, NotePage, Scratchpad } from './scratchpad.ts'

/**
 * What one attempt of one task may do to its run through tools (MCP for CLI agents, `ctx`
 * for module agents): the same claim registry, scratchpad, progress and log, and the
 * run's task graph. Bound to the attempt; revoked when it ends.
 */
export interface ToolBinding {
  readonly runId: string
  readonly taskId: string
  claim(path: string): ClaimResult
  release(path: string): void
  progress(fraction: number, message: string | undefined): void
  log(message: string): void
  readonly scratchpad: Scratchpad
  /** Adds tasks to the running DAG (validated like plan tasks; rejects with `CODE: message`, adding nothing); undefined where the run cannot grow. */
  addTasks?(tasks: readonly unknown[]): Promise<{ readonly added: readonly string[] }>
}

/** Notes `scratchpad_read` returns when no `limit` is given. */
export const DEFAULT_PAGE_NOTES = 100

/** The tools, as plain functions over a binding (the MCP server and tests call these). */
export const runTools = {
  /** Claims every path or none: refused with the holder when another running task holds an overlapping claim. */
  claimFiles(binding: ToolBinding, paths: readonly string[]): { granted: boolean; holder?: string; path?: string } {
    const taken: string[] = []
    for (const path of paths) {
      const result = binding.claim(path)
      if (!result.granted) {
        for (const back of taken) binding.release(back)
        return { granted: false, path, ...(result.holder === undefined ? {} : { holder: result.holder }) }
      }
      taken.push(path)
    }
    return { granted: true }
  },

  releaseFiles(binding: ToolBinding, paths: readonly string[]): { released: number } {
    for (const path of paths) binding.release(path)
    return { released: paths.length }
  },

  reportProgress(binding: ToolBinding, fraction: number, message: string | undefined): { ok: true } {
    binding.progress(Math.min(1, Math.max(0, fraction)), message)
    return { ok: true }
  },

  log(binding: ToolBinding, message: string): { ok: true } {
    binding.log(message)
    return { ok: true }
  },

  /** One page of notes from position `since`: at most `limit` notes and MAX_PAGE_CHARS of text; `next` continues. */
  scratchpadRead(binding: ToolBinding, since = 0, limit = DEFAULT_PAGE_NOTES): NotePage {
    return binding.scratchpad.page(since, limit)
  },

  async scratchpadAppend(binding: ToolBinding, text: string): Promise<{ note: Note }> {
    return { note: await binding.scratchpad.append(binding.taskId, text) }
  },

  async addTasks(binding: ToolBinding, tasks: readonly unknown[]): Promise<{ added: readonly string[] }> {
    if (binding.addTasks === undefined) throw new Error('add_tasks: this run cannot add tasks')
    return binding.addTasks(tasks)
  },
}
