// Reads one text file for the summarisers: `input.file` is relative to this example's
// folder. Real work, no model. Bounded: at most `input.maxBytes` (default 64 KB) are kept,
// so one huge file cannot blow up a prompt.
import { open } from 'node:fs/promises'

export default async function readFile(input, ctx) {
  const url = new URL(`../${input.file}`, import.meta.url)
  const maxBytes = input.maxBytes ?? 65536
  const handle = await open(url, 'r')
  try {
    const { size } = await handle.stat()
    const buffer = Buffer.alloc(Math.min(size, maxBytes))
    await handle.read(buffer, 0, buffer.length, 0)
    ctx.log(`read ${input.file}: ${buffer.length} of ${size} bytes`)
    return { file: input.file, bytes: size, truncated: size > maxBytes, text: buffer.toString('utf8') }
  } finally {
    await handle.close()
  }
}
