import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, docFiles, relativeLinks, where } from './markdown.ts'

describe('links in README.md and docs/', () => {
  it.each(docFiles())('every relative link of %s resolves inside the repository', (file) => {
    const broken: string[] = []
    for (const { line, target } of relativeLinks(file)) {
      const path = join(ROOT, dirname(file), decodeURIComponent(target.split('#')[0]!))
      const inRepo = relative(ROOT, path)
      const resolves = !inRepo.startsWith('..') && existsSync(path)
      if (!resolves) broken.push(`${where(file, line)} → ${target}`)
    }
    expect(broken).toEqual([])
  })

  it.each(docFiles())('%s names no contract file kept outside the repository, and no placeholder host', (file) => {
    // Links that leave the repository are caught above; this catches the contract named in prose.
    const text = readFileSync(join(ROOT, file), 'utf8')
    expect(text).not.toMatch(/DESIGN\.md|YOUR-GIT-HOST/)
  })
})
