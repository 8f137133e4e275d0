import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..')

/** README.md and every Markdown file under docs/, as paths relative to the root. */
export function docFiles(): string[] {
  const files = ['README.md']
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.md')) files.push(path)
    }
  }
  walk('docs')
  return files.sort()
}

/** One fenced code block: its info string split into language and words, its text, and the line it starts on. */
export interface CodeBlock {
  readonly file: string
  readonly line: number
  readonly lang: string
  readonly words: readonly string[]
  readonly code: string
  /** The block is preceded by `<!-- not-run -->`: illustrative only. */
  readonly notRun: boolean
}

const FENCE = /^(\s*)(```+|~~~+)\s*(.*)$/

/** The fenced code blocks of a Markdown file, in order. */
export function codeBlocks(file: string): CodeBlock[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
  const blocks: CodeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!)
    if (open === null) continue
    const [, indent, fence, info] = open
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const close = FENCE.exec(lines[j]!)
      if (close !== null && close[2]!.startsWith(fence!) && close[3]!.trim() === '') break
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!)
    }
    let k = i - 1
    while (k >= 0 && lines[k]!.trim() === '') k--
    const [lang = '', ...words] = info!.trim().split(/\s+/).filter(Boolean)
    blocks.push({ file, line: i + 1, lang, words, code: `${body.join('\n')}\n`, notRun: k >= 0 && lines[k]!.trim() === '<!-- not-run -->' })
    i = j
  }
  return blocks
}

/** The relative link targets of a Markdown file outside code: `[text](target)` and `[label]: target`. */
export function relativeLinks(file: string): { line: number; target: string }[] {
  const text = readFileSync(join(ROOT, file), 'utf8')
  const links: { line: number; target: string }[] = []
  let inFence = false
  text.split('\n').forEach((line, index) => {
    if (FENCE.test(line)) inFence = !inFence
    if (inFence) return
    const prose = line.replace(/`[^`]*`/g, '')
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)/g)) {
      const target = match[1] ?? match[2]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue
      links.push({ line: index + 1, target })
    }
  })
  return links
}

/** `file:line` for messages. */
export function where(file: string, line: number): string {
  return `${relative(ROOT, join(ROOT, file))}:${line}`
}
