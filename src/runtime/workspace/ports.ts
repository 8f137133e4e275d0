import { createServer } from 'node:net'

/**
 * Port ranges for worktree tasks (`ctx.port`, `{{port}}`): parallel dev servers and test
 * databases each get a block of `size` ports no other running task of this runtime holds.
 * A block is handed out only if its first port can be bound on 127.0.0.1 right now.
 */
export class PortBlocks {
  readonly #base: number
  readonly #size: number
  readonly #count: number
  readonly #held = new Set<number>()

  constructor(base = 41_000, size = 10, count = 1_000) {
    this.#base = base
    this.#size = size
    this.#count = count
  }

  /** Takes a free block and returns its first port. */
  async take(): Promise<number> {
    for (let block = 0; block < this.#count; block++) {
      if (this.#held.has(block)) continue
      this.#held.add(block)
      const port = this.#base + block * this.#size
      if (await canBind(port)) return port
      this.#held.delete(block)
    }
    throw new Error(`no free port block of ${this.#size} between ${this.#base} and ${this.#base + this.#count * this.#size}`)
  }

  /** Gives back the block that starts at `port`. */
  give(port: number): void {
    this.#held.delete(Math.floor((port - this.#base) / this.#size))
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}
