import type { Clock } from '../core/clock.ts'
import type { AttemptHandle, AttemptListener, AttemptRequest, Executor } from './executor.ts'
import type { DemandBook } from '../governor/demand.ts'

/**
 * An executor that passes every attempt on to `inner` and records what the attempt used
 * (`AttemptResult.resources`, reported by the executor that ran it) in the per-agent
 * {@link DemandBook}. Attempts without a measurement teach nothing.
 */
export class MeasuredExecutor implements Executor {
  constructor(
    readonly inner: Executor,
    readonly demand: DemandBook,
    readonly clock: Clock,
  ) {}

  get name(): string {
    return this.inner.name
  }

  start(request: AttemptRequest, listener: AttemptListener): AttemptHandle {
    const startedAt = this.clock.now()
    const handle = this.inner.start(request, listener)
    const result = handle.result.then((outcome) => {
      if (outcome.resources !== undefined) {
        this.demand.record(request.agent.name, {
          cpuMs: outcome.resources.cpuMs,
          wallMs: outcome.resources.wallMs ?? this.clock.now() - startedAt,
          ...(outcome.resources.peakRssMb !== undefined ? { peakRssMb: outcome.resources.peakRssMb } : {}),
        })
      }
      return outcome
    })
    return { result, abort: () => handle.abort() }
  }

  close(force?: boolean): Promise<void> {
    return this.inner.close(force)
  }
}
