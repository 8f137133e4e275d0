import { describe, expect, it } from 'vitest'
import { callCost, oneLine } from '../../../../src/runtime/execution/processes/cli-driver.ts'

describe('CLI driver error text', () => {
  it('puts a multi-line, coloured stderr tail on one line without control characters (regression: shown as �)', () => {
    const text = 'Agent "a" exited with code 1; stderr:\n\u001b[31mError:\u001b[0m boom\r\n  at x\n\n\u0007done'
    expect(oneLine(text)).toBe('Agent "a" exited with code 1; stderr: Error: boom | at x | done')
  })
})

describe('CLI call cost', () => {
  it('prices cached input at cachedInputUsdPerMTok, else at the input price', () => {
    expect(callCost({ inputUsdPerMTok: 3, outputUsdPerMTok: 15, cachedInputUsdPerMTok: 0.3 }, 1_000_000, 1_000_000, 1_000_000)).toBeCloseTo(18.3)
    expect(callCost({ inputUsdPerMTok: 3, outputUsdPerMTok: 15 }, 1_000_000, 1_000_000, 0)).toBeCloseTo(6)
  })
})
