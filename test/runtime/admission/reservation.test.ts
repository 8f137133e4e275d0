import { describe, expect, it } from 'vitest'
import { SpendReservations } from '../../../src/runtime/admission/reservation.ts'

describe('SpendReservations', () => {
  it('lets one attempt of an agent with no estimate run at a time', () => {
    const r = new SpendReservations()
    expect(r.admits('coder', 0, 0.01)).toBe(true)
    r.started(0, 'coder')
    expect(r.admits('coder', 0, 0.01)).toBe(false)
    expect(r.admits('reviewer', 0, 0.01)).toBe(true)
  })

  it('reserves the agent\'s mean spend per running attempt, less what it has spent', () => {
    const r = new SpendReservations()
    r.started(0, 'coder')
    r.spent(0, 0.004)
    r.ended(0)
    expect(r.estimate('coder')).toBeCloseTo(0.004)
    r.started(1, 'coder')
    r.spent(1, 0.001)
    expect(r.outstanding()).toBeCloseTo(0.003)
    // 0.004 spent + 0.003 still held by attempt 1 + 0.004 for a new one > 0.01
    expect(r.admits('coder', 0.005, 0.01)).toBe(false)
    expect(r.admits('coder', 0.002, 0.01)).toBe(true)
  })

  it('learns nothing from an attempt that spent nothing', () => {
    const r = new SpendReservations()
    r.started(0, 'coder')
    r.ended(0)
    expect(r.estimate('coder')).toBeUndefined()
  })
})
