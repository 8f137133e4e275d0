import { TroupeError } from '../../src/runtime/core/errors.ts'

/** The TroupeError `fn` throws; fails the test if it throws nothing or something else. */
export function troupeErrorOf(fn: () => unknown): TroupeError {
  try {
    fn()
  } catch (error) {
    if (error instanceof TroupeError) return error
    throw error
  }
  throw new Error('expected a TroupeError')
}
