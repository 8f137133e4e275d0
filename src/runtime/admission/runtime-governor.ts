import type { Clock } from '../core/clock.ts'
import type { ResolvedConfig } from '../core/config.ts'
import type { GovernorEvent, GovernorSampleEvent } from '../governor/governor.ts'
import type { DemandBook } from '../governor/demand.ts'
import type { Dispatcher } from './dispatcher.ts'
import { FitGate, type HoldNotice } from './fit-gate.ts'
import type { Gate } from './gate.ts'
import type { CompiledTask } from '../plan/plan.ts'
import { Governor, type ResourceProbe } from '../governor/governor.ts'
import { readMachineLimits, type MachineLimits } from '../governor/machine-limits.ts'

export interface RuntimeGovernorOptions {
  readonly config: ResolvedConfig
  readonly demand: DemandBook
  readonly clock: Clock
  readonly dispatcher: Dispatcher
  /** The runtime's gates: the fit gate goes first. */
  readonly gates: Gate[]
  readonly probe: ResourceProbe
  /** The machine's limits as the probe knows them (cgroups), else read now. */
  readonly machine: MachineLimits | undefined
  readonly onSample: (event: GovernorSampleEvent) => void
  readonly onHeld: (notice: HoldNotice) => void
  /** `governor:throttled` / `governor:resumed`, for the runtime and every run in flight. */
  readonly onTransition: (name: 'governor:throttled' | 'governor:resumed', event: GovernorEvent) => void
  /** Tasks the fit gate admits without a reservation: they will use no CPU (task-cache hits). */
  readonly exempt?: (runId: string, task: CompiledTask) => boolean
}

/**
 * Wires the governor into a runtime: admission by fit as the first gate, the dispatcher's
 * admission limit, and a new dispatch attempt after every reading (it may make room for a
 * task the fit gate held).
 */
export function createRuntimeGovernor(options: RuntimeGovernorOptions): Governor<FitGate> {
  const { config, dispatcher } = options
  // The dispatcher is unbounded (each run bounds itself); adaptive mode steers within maxParallel.
  const capacity = Number.isFinite(dispatcher.capacity) ? dispatcher.capacity : config.maxParallel
  const machine = options.machine ?? readMachineLimits()
  // The fit gate is made first (the governor feeds it readings); it asks the governor for one.
  let governor: Governor<FitGate> | undefined
  const fit = new FitGate(options.demand, options.clock, machine, options.onHeld, () => governor?.sampleSoon(), options.exempt)
  options.gates.unshift(fit)
  governor = new Governor({
    fit,
    machine,
    probe: options.probe,
    clock: options.clock,
    policy: config.governor,
    sampleIntervalMs: config.governor.sampleIntervalMs,
    capacity,
    initialLimit: Math.min(capacity, config.maxParallel),
    inFlight: () => dispatcher.inFlight,
    onChange: (change) => {
      if (change.type === 'governor:sample') options.onSample(change.event)
      else if (change.type !== 'limit') options.onTransition(change.type, change.event)
      dispatcher.request()
    },
  })
  dispatcher.setAdmissionLimit(() => governor.admissionLimit)
  return governor
}
