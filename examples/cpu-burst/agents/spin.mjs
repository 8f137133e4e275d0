// Real CPU work: hashes a buffer in a loop for `input.ms` milliseconds of wall time.
import { createHash } from 'node:crypto'

export default async (input) => {
  const end = performance.now() + (input?.ms ?? 100)
  const data = Buffer.alloc(1024, 7)
  let rounds = 0
  while (performance.now() < end) {
    createHash('sha256').update(data).digest()
    rounds++
  }
  return { rounds }
}
