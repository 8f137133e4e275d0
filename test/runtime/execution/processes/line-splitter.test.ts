import { describe, expect, it } from 'vitest'
import { LineSplitter, Tail } from '../../../../src/runtime/execution/processes/line-splitter.ts'

const split = (chunks: (string | Buffer)[], maxLine = 100) => {
  const lines: [string, number][] = []
  const splitter = new LineSplitter(maxLine, (line, dropped) => lines.push([line, dropped]))
  for (const chunk of chunks) splitter.push(chunk)
  splitter.end()
  return lines
}

describe('LineSplitter', () => {
  it('joins a line split across chunks and strips \\r\\n', () => {
    expect(split(['ab', 'c\r\nd', 'e\n'])).toEqual([['abc', 0], ['de', 0]])
  })

  it('keeps a multi-byte character split across chunks whole', () => {
    const bytes = Buffer.from('é\n')
    expect(split([bytes.subarray(0, 1), bytes.subarray(1)])).toEqual([['é', 0]])
  })

  it('cuts a line longer than maxLine and counts what it dropped', () => {
    expect(split(['x'.repeat(250), 'y\nnext\n'])).toEqual([['x'.repeat(100), 151], ['next', 0]])
  })

  it('flushes a last line without a newline', () => {
    expect(split(['tail'])).toEqual([['tail', 0]])
  })
})

describe('Tail', () => {
  it('keeps the last characters and says how many were dropped', () => {
    const tail = new Tail(4)
    tail.append('abcdef')
    tail.append('gh')
    expect(tail.toString()).toBe('[… 4 earlier characters in the attempt log]\nefgh')
  })
})
