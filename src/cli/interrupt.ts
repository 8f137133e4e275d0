/** What to do on SIGINT/SIGTERM: the first signal, and any signal after it. */
export interface InterruptHandlers {
  graceful(signal: NodeJS.Signals): void
  force(signal: NodeJS.Signals): void | Promise<void>
}

/** Listening to SIGINT and SIGTERM until disposed. */
export interface Interrupt {
  /** A signal was received. */
  readonly interrupted: boolean
  /** Resolves at the next signal (after it was handled). */
  next(): Promise<void>
  dispose(): void
}

/**
 * Routes SIGINT/SIGTERM: the first calls `graceful`, the second (and later) `force`. Two
 * states — armed, then interrupted — so a later signal never waits on the first one's work.
 */
export function onInterrupt(handlers: InterruptHandlers): Interrupt {
  let state: 'armed' | 'interrupted' = 'armed'
  const waiting = new Set<() => void>()
  const onSignal = (signal: NodeJS.Signals) => {
    if (state === 'armed') {
      state = 'interrupted'
      handlers.graceful(signal)
    } else {
      void handlers.force(signal)
    }
    for (const resolve of waiting) resolve()
    waiting.clear()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    get interrupted() {
      return state === 'interrupted'
    },
    next: () => new Promise<void>((resolve) => waiting.add(resolve)),
    dispose() {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      for (const resolve of waiting) resolve()
      waiting.clear()
    },
  }
}
