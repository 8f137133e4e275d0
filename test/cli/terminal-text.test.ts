import { describe, expect, it } from 'vitest'
import { fit, terminalText } from '../../src/cli/terminal-text.ts'

describe('terminalText', () => {
  it('removes an OSC sequence that would retitle the terminal', () => {
    expect(terminalText('a\u001b]0;owned\u0007b')).toBe('ab')
    expect(terminalText('a\u001b]0;owned\u001b\\b')).toBe('ab')
  })

  it('removes CSI sequences that clear the screen, move the cursor or colour text', () => {
    expect(terminalText('\u001b[2J\u001b[H\u001b[32m✓ completed\u001b[0m')).toBe('✓ completed')
  })

  it('removes 8-bit C1 sequences', () => {
    expect(terminalText('a\u009b2Jb\u009d0;t\u009cc')).toBe('abc')
  })

  it('turns a carriage return, newline or other control into a visible mark, so one value stays one line', () => {
    expect(terminalText('x\r\ny\u0008z\u0000')).toBe('x��y�z�')
  })

  it('keeps newlines, and only them, when multiline', () => {
    expect(terminalText('a\nb\rc', 100, { multiline: true })).toBe('a\nb�c')
  })

  it('removes bidi overrides that reorder what is shown', () => {
    expect(terminalText('abc\u202edcba\u2066x\u2069')).toBe('abcdcbax')
  })

  it('bounds the length, ending in an ellipsis', () => {
    const text = terminalText('x'.repeat(1000), 10)
    expect(text).toBe(`${'x'.repeat(9)}…`)
  })

  it('keeps plain text, including non-ASCII, as it is', () => {
    expect(terminalText('build → test ✓ 完了')).toBe('build → test ✓ 完了')
  })
})

describe('fit', () => {
  it('cuts to the width with an ellipsis', () => {
    expect(fit('abcdef', 4)).toBe('abc…')
    expect(fit('abc', 4)).toBe('abc')
  })
})
