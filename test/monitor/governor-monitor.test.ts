import { describe, expect, it } from 'vitest'
import type { AgentDemand } from '../../src/runtime/governor/demand.ts'
import { GovernorMonitor } from '../../src/monitor/governor-monitor.ts'

describe('GovernorMonitor: holds and per-agent estimates', () => {
  it('keeps the latest hold message with its time, through later readings', () => {
    const g = new GovernorMonitor()
    g.apply('governor:held', { runId: 'r', taskId: 'b', agent: 'build', reason: 'cpu', message: 'held: build needs ~1.0 CPU, 0.2 free', at: 7 })
    g.apply('governor:sample', { cpuPercent: 80, memoryPercent: 30, at: 9 })
    expect(g.view.held).toEqual({ message: 'held: build needs ~1.0 CPU, 0.2 free', at: 7 })
  })

  it("takes the runtime's per-agent estimates at each reading", () => {
    let agents: Record<string, AgentDemand> = {}
    const g = new GovernorMonitor(undefined, () => agents)
    g.apply('governor:sample', { cpuPercent: 10, memoryPercent: 30, at: 1 })
    expect(g.view.agents).toBeUndefined()
    agents = { llm: { cpu: 0.01, samples: 3, source: 'measured' } }
    g.apply('governor:sample', { cpuPercent: 10, memoryPercent: 30, at: 2 })
    expect(g.view.agents).toEqual(agents)
  })
})
